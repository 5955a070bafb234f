-- Directories this user joined (directory-v1.md). The member key is a
-- persona's (pair-v1.md §12): the one joined with, or one made for the
-- directory; the root key is pinned on joining.
CREATE TABLE directories (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    relay_url     TEXT NOT NULL,
    root          BLOB NOT NULL,
    members_only  INTEGER NOT NULL,
    persona_id    INTEGER NOT NULL REFERENCES personas(id) ON DELETE CASCADE,
    attestation   BLOB,                 -- Attestation (members-only), as received
    revoked       BLOB NOT NULL DEFAULT x'',  -- member keys the directory last said it revoked
    address_id    TEXT REFERENCES addresses(conversation_id) ON DELETE SET NULL,
    entry_name    TEXT,                 -- the entry this user published, if any
    entry_text    TEXT,
    joined_at     INTEGER NOT NULL,
    UNIQUE (relay_url, name)
);

-- Attestations shown in a conversation, either way (directory-v1.md §4):
-- `outgoing` this user showed its own; else the contact showed theirs,
-- checked against the identity MLS authenticated.
CREATE TABLE conversation_attestations (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    outgoing        INTEGER NOT NULL,
    root            BLOB NOT NULL,
    directory       TEXT NOT NULL,
    attestation     BLOB NOT NULL,
    at              INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, outgoing, root, directory)
);

CREATE TRIGGER events_attestation_added AFTER INSERT ON conversation_attestations BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('conversation', NEW.conversation_id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
