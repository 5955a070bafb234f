-- Relationships: introductions (docs/spec/introduction-v1.md), blocking,
-- moving and rotating channels (docs/spec/pair-v1.md §7-§9).

ALTER TABLE conversations ADD COLUMN introduced_by TEXT;       -- the introducer's name, as this user knew them
ALTER TABLE conversations ADD COLUMN ignore_introductions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;

-- channels.role gains 'retiring': a channel being drained after a move;
-- read, never written, deleted (by its host) once every reader has read
-- past the move frame (`retire_seq`), or at `retire_after` at the latest.
ALTER TABLE channels ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN retire_seq INTEGER;
ALTER TABLE channels ADD COLUMN retire_after INTEGER;
UPDATE channels SET created_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;

-- Introductions this user made.
CREATE TABLE introductions_made (
    id          BLOB PRIMARY KEY,           -- intro_id
    conv_a      TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,  -- creates
    conv_b      TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,  -- joins
    note        TEXT NOT NULL,
    a_state     TEXT NOT NULL DEFAULT 'offered',   -- 'offered' | 'accepted' | 'declined'
    b_state     TEXT NOT NULL DEFAULT 'offered',
    a_kp        BLOB, a_tags BLOB,
    b_kp        BLOB, b_tags BLOB,
    state       TEXT NOT NULL DEFAULT 'open',      -- 'open' | 'matched' | 'connected' | 'closed'
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Introductions offered to this user.
CREATE TABLE introductions (
    id            BLOB PRIMARY KEY,         -- intro_id
    via           TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    peer_name     TEXT NOT NULL,
    note          TEXT NOT NULL,
    creates       INTEGER NOT NULL,
    state         TEXT NOT NULL,            -- 'pending' | 'accepted' | 'declined' | 'ignored' | 'matched'
                                            -- | 'connected' | 'refused' | 'closed'
    my_name       TEXT,                     -- the name to show the peer
    identity      BLOB,                     -- IdentityKey for the new conversation (secret)
    pending_kp    BLOB,                     -- PendingKeyPackage (secret)
    peer_kp       BLOB,                     -- creator: the peer's key package
    conversation  TEXT,                     -- once connected
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) WITHOUT ROWID;
