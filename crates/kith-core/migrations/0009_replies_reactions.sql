-- ContentV1 ids (content-v1.md §5) of messages, what a reply is to, and
-- reactions (§7.6): one per member and message, kept apart from messages.
ALTER TABLE messages ADD COLUMN content_id BLOB;
ALTER TABLE messages ADD COLUMN reply_to BLOB;
CREATE INDEX messages_by_content_id ON messages (conversation_id, content_id);
CREATE TABLE reactions (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    target          BLOB NOT NULL,
    sender_key      BLOB NOT NULL,
    reaction        TEXT NOT NULL,
    sent_at         INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, target, sender_key)
);
