-- kith-relay PostgreSQL schema, migration 1. The same tables as the SQLite
-- store (migrations/sqlite/0001_init.sql), in portable SQL: BIGINT times in
-- Unix milliseconds, BYTEA ids and keys.

CREATE TABLE relay_meta (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE channels (
    id             BIGSERIAL PRIMARY KEY,
    write_id       BYTEA  NOT NULL UNIQUE,
    read_id        BYTEA  NOT NULL UNIQUE,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    channel_ttl_ms BIGINT NOT NULL,
    message_ttl_ms BIGINT NOT NULL,
    last_seq       BIGINT NOT NULL DEFAULT 0,
    message_count  BIGINT NOT NULL DEFAULT 0,
    message_bytes  BIGINT NOT NULL DEFAULT 0,
    blob_bytes     BIGINT NOT NULL DEFAULT 0,
    key_count      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX channels_expiry ON channels (expires_at);

CREATE TABLE channel_keys (
    channel_id BIGINT   NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    key        BYTEA    NOT NULL,
    rights     SMALLINT NOT NULL,   -- bit 0 read, bit 1 write, bit 2 admin
    acked_seq  BIGINT   NOT NULL,
    PRIMARY KEY (channel_id, key)
);

CREATE TABLE messages (
    channel_id  BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    payload     BYTEA  NOT NULL,
    PRIMARY KEY (channel_id, seq)
);
CREATE INDEX messages_expiry ON messages (expires_at);

CREATE TABLE blobs (
    id          BIGSERIAL PRIMARY KEY,
    id_hash     BYTEA   NOT NULL UNIQUE,   -- SHA-256 of the blob id; the id itself is never stored
    channel_id  BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    chunk_size  INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    read_once   BOOLEAN NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX blobs_expiry ON blobs (expires_at);
CREATE INDEX blobs_channel ON blobs (channel_id);

CREATE TABLE blob_chunks (
    blob_id BIGINT  NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
    idx     INTEGER NOT NULL,
    data    BYTEA   NOT NULL,
    PRIMARY KEY (blob_id, idx)
);
