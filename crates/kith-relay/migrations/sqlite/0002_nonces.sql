-- Request nonces, for relays whose requests are served by more than one
-- process (CGI): a replay must be refused whichever process receives it.
CREATE TABLE nonces (
    nonce      BLOB    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX nonces_expiry ON nonces (expires_at);
