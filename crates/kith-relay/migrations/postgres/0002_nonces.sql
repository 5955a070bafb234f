-- Request nonces, shared by every relay process on this database: a replay
-- is refused whichever process receives it.
CREATE TABLE nonces (
    nonce      BYTEA  PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX nonces_expiry ON nonces (expires_at);
