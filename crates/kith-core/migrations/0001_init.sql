-- The client's store: one SQLite file under the profile's home. MLS state
-- lives in `conversations.mls_state` and is written in the same transaction
-- as the messages, cursors and outbox entries it belongs to.

CREATE TABLE profile (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    name        TEXT NOT NULL,
    relay_url   TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE conversations (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,              -- 'pair'
    state           TEXT NOT NULL,              -- 'invited' | 'active'
    contact_name    TEXT,                       -- the name they show us
    local_name      TEXT,                       -- our rename, wins over contact_name
    my_name         TEXT NOT NULL,              -- the name we show them
    identity        BLOB NOT NULL,              -- IdentityKey (secret)
    pending_kp      BLOB,                       -- PendingKeyPackage while invited
    mls_state       BLOB,                       -- GroupSnapshot once active
    created_at      INTEGER NOT NULL,
    last_activity   INTEGER NOT NULL,
    unread          INTEGER NOT NULL DEFAULT 0,
    expires_at      INTEGER                     -- of the invitation, while invited
);

CREATE TABLE channels (
    id              INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    relay_url       TEXT NOT NULL,
    relay_id        BLOB NOT NULL,
    write_id        BLOB NOT NULL,
    read_id         BLOB NOT NULL,
    key             BLOB NOT NULL,              -- capability key seed (secret)
    owner           INTEGER NOT NULL,           -- we created it (admin)
    cursor          INTEGER NOT NULL DEFAULT 0,
    preferred       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (conversation_id, read_id)
);

CREATE TABLE messages (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    message_id      BLOB NOT NULL,
    outgoing        INTEGER NOT NULL,
    sent_at         INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    text            TEXT NOT NULL,
    UNIQUE (conversation_id, message_id)
);

-- Digests of relay payloads already handled (sent by us, or processed):
-- a retried or replayed payload is skipped before MLS sees it.
CREATE TABLE seen (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    digest          BLOB NOT NULL,
    PRIMARY KEY (conversation_id, digest)
) WITHOUT ROWID;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    payload         BLOB NOT NULL,              -- padded envelope, sent as is on every try
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE integrity_events (
    id              INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    at              INTEGER NOT NULL,
    detail          TEXT NOT NULL
);
