-- Files (files-v1.md): each file message, sent or received, with what it
-- takes to fetch and open it; and uploads under way, resumed where they
-- stopped.
CREATE TABLE files (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    message_id      BLOB NOT NULL,
    relay_url       TEXT NOT NULL,
    blob_id         BLOB NOT NULL,
    file_key        BLOB NOT NULL,
    nonce           BLOB NOT NULL,
    size            INTEGER NOT NULL,
    hash            BLOB NOT NULL,
    filename        TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    caption         TEXT NOT NULL,
    expires         INTEGER NOT NULL,
    path            TEXT,                       -- sent from, or saved to
    PRIMARY KEY (conversation_id, message_id)
) WITHOUT ROWID;

CREATE TABLE uploads (
    id              INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    path            TEXT NOT NULL,
    size            INTEGER NOT NULL,
    modified        INTEGER NOT NULL,
    relay_url       TEXT NOT NULL,
    channel_id      INTEGER NOT NULL,
    blob_id         BLOB NOT NULL,
    file_key        BLOB NOT NULL,
    nonce           BLOB NOT NULL,
    chunk_count     INTEGER NOT NULL,
    done            INTEGER NOT NULL DEFAULT 0, -- chunks stored, from the first
    caption         TEXT NOT NULL,
    expires         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (conversation_id, path, size, modified)
);
