-- Directories (docs/spec/directory-v1.md): the relay's operator runs them;
-- their secrets stay in the store, as the channels' do.
CREATE TABLE directories (
    name          TEXT PRIMARY KEY,
    members_only  INTEGER NOT NULL,
    root_secret   BLOB NOT NULL,
    created_at    INTEGER NOT NULL
);

-- Signing keys, signed by the root (§1); rotation adds one.
CREATE TABLE directory_keys (
    directory      TEXT NOT NULL REFERENCES directories(name) ON DELETE CASCADE,
    key            BLOB NOT NULL,
    secret         BLOB NOT NULL,
    valid_from     INTEGER NOT NULL,
    valid_until    INTEGER NOT NULL,
    root_signature BLOB NOT NULL,
    PRIMARY KEY (directory, key)
);

-- One row per admission (§2): a one-time enrolment until it is used, then
-- a member. A removed member stays, for the revocation list, until its
-- attestation would have expired.
CREATE TABLE directory_members (
    id           INTEGER PRIMARY KEY,
    directory    TEXT NOT NULL REFERENCES directories(name) ON DELETE CASCADE,
    secret_hash  BLOB NOT NULL UNIQUE,
    statement    TEXT NOT NULL,
    valid_from   INTEGER NOT NULL,
    valid_until  INTEGER NOT NULL,
    admitted_at  INTEGER NOT NULL,
    member       BLOB,
    enrolled_at  INTEGER,
    removed_at   INTEGER,
    UNIQUE (directory, member)
);

-- Entries (§3): one per member key and directory.
CREATE TABLE directory_entries (
    id            INTEGER PRIMARY KEY,
    directory     TEXT NOT NULL REFERENCES directories(name) ON DELETE CASCADE,
    member        BLOB NOT NULL,
    display_name  TEXT NOT NULL,
    text          TEXT NOT NULL,
    address       TEXT NOT NULL,
    published_at  INTEGER NOT NULL,
    UNIQUE (directory, member)
);

-- Word-prefix search over names and texts; kept by the triggers below.
-- Prefix indexes of 1 to 4 characters: a prefix query ("yea"*) then reads
-- one stored list, newest first, and stops at the limit, instead of
-- merging the lists of every word it begins (measured: 3.5 ms to 0.16 ms
-- over 100,000 entries; docs/performance.md).
CREATE VIRTUAL TABLE directory_search USING fts5(
    display_name, text,
    content = 'directory_entries', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 0',
    prefix = '1 2 3 4'
);
CREATE TRIGGER directory_entries_insert AFTER INSERT ON directory_entries BEGIN
    INSERT INTO directory_search (rowid, display_name, text)
        VALUES (new.id, new.display_name, new.text);
END;
CREATE TRIGGER directory_entries_delete AFTER DELETE ON directory_entries BEGIN
    INSERT INTO directory_search (directory_search, rowid, display_name, text)
        VALUES ('delete', old.id, old.display_name, old.text);
END;
CREATE TRIGGER directory_entries_update AFTER UPDATE ON directory_entries BEGIN
    INSERT INTO directory_search (directory_search, rowid, display_name, text)
        VALUES ('delete', old.id, old.display_name, old.text);
    INSERT INTO directory_search (rowid, display_name, text)
        VALUES (new.id, new.display_name, new.text);
END;
