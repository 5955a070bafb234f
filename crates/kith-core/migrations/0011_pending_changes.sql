-- An edit or delete that arrives before the message it changes (a 1:1
-- conversation over two relays has no order between them) waits here
-- until that message arrives (content-v1.md §7.7).
CREATE TABLE pending_changes (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    target          BLOB NOT NULL,
    author          BLOB NOT NULL,
    text            TEXT,
    subject         TEXT,
    deletes         INTEGER NOT NULL,
    received_at     INTEGER NOT NULL
);
CREATE INDEX pending_changes_by_target ON pending_changes (conversation_id, target);
