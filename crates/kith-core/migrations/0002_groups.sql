-- GroupV1 (docs/spec/group-v1.md). conversations.kind gains 'group';
-- conversations.state gains 'joining' (a group link accepted, waiting for
-- the admin's Welcome) and 'closed' (left the group, or removed from it).

-- Pair conversations: a spare key package each side offers the other, so
-- either can add the other to a group at once (group-v1.md §6).
ALTER TABLE conversations ADD COLUMN spare_identity BLOB;  -- our IdentityKey for it (secret)
ALTER TABLE conversations ADD COLUMN spare_kp BLOB;        -- our PendingKeyPackage for it (secret)
ALTER TABLE conversations ADD COLUMN contact_kp BLOB;      -- the contact's key package
-- Groups: when this member last committed (post-compromise updates).
ALTER TABLE conversations ADD COLUMN last_commit INTEGER;
ALTER TABLE conversations ADD COLUMN closed_reason TEXT;

-- 'conv': a conversation's channel. 'inbox': a group link's channel, where
-- the join request and the group welcome pass, sealed with `seal_key`.
ALTER TABLE channels ADD COLUMN role TEXT NOT NULL DEFAULT 'conv';
ALTER TABLE channels ADD COLUMN seal_key BLOB;

-- An outbox entry meant for one channel only (an inbox), and the epoch of
-- a queued commit (dropped, not sent, once that epoch has passed).
ALTER TABLE outbox ADD COLUMN channel_id INTEGER REFERENCES channels(id) ON DELETE CASCADE;
ALTER TABLE outbox ADD COLUMN commit_epoch INTEGER;

-- Members of a group as this member knows them.
CREATE TABLE group_members (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    identity_key    BLOB NOT NULL,
    display_name    TEXT NOT NULL DEFAULT '',
    capability_key  BLOB NOT NULL,              -- public key on the group's channel
    PRIMARY KEY (conversation_id, identity_key)
) WITHOUT ROWID;

-- Changes this member asked for, kept until a commit of its own that
-- carries them comes back from the channel (first commit of an epoch wins;
-- a lost one is built again).
CREATE TABLE group_ops (
    id              INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,              -- 'add' | 'remove' | 'admins' | 'update'
    key_package     BLOB,                       -- add
    capability_seed BLOB,                       -- add: the new member's channel key (secret)
    member_name     TEXT,                       -- add
    deliver_to      TEXT,                       -- add: pair conversation id
    inbox_channel   INTEGER,                    -- add: or the inbox channel
    target          BLOB,                       -- remove: identity key; admins: encoded list
    epoch           INTEGER,                    -- epoch of the commit carrying it; NULL = not built
    welcome         BLOB,                       -- add: the Welcome of that commit
    created_at      INTEGER NOT NULL
);
ALTER TABLE messages ADD COLUMN sender TEXT;             -- groups: the sender's name when it arrived
