-- Personas (docs/spec/pair-v1.md §12): an identity key this user chose to
-- share among the relationships of one context ("School"), instead of one
-- per relationship. A conversation started from a persona holds a copy of
-- its key (conversations.identity) and names it here.
CREATE TABLE personas (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE COLLATE NOCASE,  -- this user's name for it
    display_name    TEXT NOT NULL,                        -- the name shown in its relationships
    identity        BLOB NOT NULL,                        -- IdentityKey (secret)
    created_at      INTEGER NOT NULL
);

ALTER TABLE conversations ADD COLUMN persona_id INTEGER REFERENCES personas(id) ON DELETE SET NULL;
ALTER TABLE addresses ADD COLUMN persona_id INTEGER REFERENCES personas(id) ON DELETE SET NULL;

-- Links between relationships (pair-v1.md §12): proofs that two identity
-- keys are one person's. `outgoing`: this user revealed its key `other` in
-- the conversation; else the contact revealed theirs.
CREATE TABLE links (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    other_identity  BLOB NOT NULL,
    outgoing        INTEGER NOT NULL,
    proof           BLOB NOT NULL,               -- the LinkProof as received or sent
    at              INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, other_identity, outgoing)
);

CREATE TRIGGER events_link_added AFTER INSERT ON links BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('conversation', NEW.conversation_id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
