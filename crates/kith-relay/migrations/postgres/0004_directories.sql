-- Directories (docs/spec/directory-v1.md): the relay's operator runs them;
-- their secrets stay in the store, as the channels' do.
CREATE TABLE directories (
    name          TEXT PRIMARY KEY,
    members_only  BOOLEAN NOT NULL,
    root_secret   BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Signing keys, signed by the root (§1); rotation adds one.
CREATE TABLE directory_keys (
    directory      TEXT NOT NULL REFERENCES directories(name) ON DELETE CASCADE,
    key            BYTEA NOT NULL,
    secret         BYTEA NOT NULL,
    valid_from     BIGINT NOT NULL,
    valid_until    BIGINT NOT NULL,
    root_signature BYTEA NOT NULL,
    PRIMARY KEY (directory, key)
);

-- One row per admission (§2): a one-time enrolment until it is used, then
-- a member. A removed member stays, for the revocation list, until its
-- attestation would have expired.
CREATE TABLE directory_members (
    id           BIGSERIAL PRIMARY KEY,
    directory    TEXT NOT NULL REFERENCES directories(name) ON DELETE CASCADE,
    secret_hash  BYTEA NOT NULL UNIQUE,
    statement    TEXT NOT NULL,
    valid_from   BIGINT NOT NULL,
    valid_until  BIGINT NOT NULL,
    admitted_at  BIGINT NOT NULL,
    member       BYTEA,
    enrolled_at  BIGINT,
    removed_at   BIGINT,
    UNIQUE (directory, member)
);

-- Entries (§3): one per member key and directory; `words` is what a
-- word-prefix search looks in.
CREATE TABLE directory_entries (
    id            BIGSERIAL PRIMARY KEY,
    directory     TEXT NOT NULL REFERENCES directories(name) ON DELETE CASCADE,
    member        BYTEA NOT NULL,
    display_name  TEXT NOT NULL,
    text          TEXT NOT NULL,
    address       TEXT NOT NULL,
    published_at  BIGINT NOT NULL,
    words         tsvector GENERATED ALWAYS AS
                      (to_tsvector('simple', display_name || ' ' || text)) STORED,
    UNIQUE (directory, member)
);
CREATE INDEX directory_entries_words ON directory_entries USING GIN (words);
