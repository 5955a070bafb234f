-- kith-relay SQLite schema, migration 1.
-- All times are Unix milliseconds. Ids and keys are raw 32-byte blobs.

CREATE TABLE relay_meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE channels (
    id             INTEGER PRIMARY KEY,
    write_id       BLOB    NOT NULL UNIQUE,
    read_id        BLOB    NOT NULL UNIQUE,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,   -- idle expiry, pushed forward by use
    channel_ttl_ms INTEGER NOT NULL,
    message_ttl_ms INTEGER NOT NULL,
    last_seq       INTEGER NOT NULL DEFAULT 0,
    message_count  INTEGER NOT NULL DEFAULT 0,
    message_bytes  INTEGER NOT NULL DEFAULT 0,
    blob_bytes     INTEGER NOT NULL DEFAULT 0,   -- reserved by blob_create
    key_count      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX channels_expiry ON channels (expires_at);

CREATE TABLE channel_keys (
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    key        BLOB    NOT NULL,
    rights     INTEGER NOT NULL,   -- bit 0 read, bit 1 write, bit 2 admin
    acked_seq  INTEGER NOT NULL,
    PRIMARY KEY (channel_id, key)
) WITHOUT ROWID;

-- A rowid table: payloads (up to 256 KiB) stay out of the primary-key index.
CREATE TABLE messages (
    channel_id  INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    payload     BLOB    NOT NULL,
    UNIQUE (channel_id, seq)
);
CREATE INDEX messages_expiry ON messages (expires_at);

CREATE TABLE blobs (
    id          INTEGER PRIMARY KEY,
    id_hash     BLOB    NOT NULL UNIQUE,   -- SHA-256 of the blob id; the id itself is never stored
    channel_id  INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    chunk_size  INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    read_once   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX blobs_expiry ON blobs (expires_at);
CREATE INDEX blobs_channel ON blobs (channel_id);

CREATE TABLE blob_chunks (
    blob_id INTEGER NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
    idx     INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    PRIMARY KEY (blob_id, idx)
);
