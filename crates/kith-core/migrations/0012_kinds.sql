-- Capabilities, receipts, disappearing messages, payments, calls and
-- application parts (content-v1.md §7.8–§7.12, §8.1).

-- What each member shows and does, as it last advertised it: media types
-- and features between spaces (' text/plain reactions '), so that one
-- instr() tells whether a member has one.
CREATE TABLE capabilities (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    member          BLOB NOT NULL,              -- identity key in the conversation
    tokens          TEXT NOT NULL,
    PRIMARY KEY (conversation_id, member)
) WITHOUT ROWID;

ALTER TABLE conversations ADD COLUMN caps_sent TEXT;                    -- tokens last advertised here
ALTER TABLE conversations ADD COLUMN receipts INTEGER NOT NULL DEFAULT 1; -- this user sends receipts
ALTER TABLE conversations ADD COLUMN timer INTEGER NOT NULL DEFAULT 0;    -- disappearing after (s); 0 off

-- kind: NULL (text, mail, reply), 'timer', 'payment', 'payment-status',
-- 'call', 'app'. data: a payment's payto URI, a call's id, an app part's
-- bytes; data_type: an app part's media type; state: a payment's or a
-- call's.
ALTER TABLE messages ADD COLUMN kind TEXT;
ALTER TABLE messages ADD COLUMN data BLOB;
ALTER TABLE messages ADD COLUMN data_type TEXT;
ALTER TABLE messages ADD COLUMN state TEXT;
ALTER TABLE messages ADD COLUMN expires_at INTEGER;
ALTER TABLE messages ADD COLUMN read_at INTEGER;            -- incoming: when `read` showed it
CREATE INDEX messages_expiring ON messages (expires_at) WHERE expires_at IS NOT NULL;

-- The best status each member reported for a message (1 delivered, 2 read).
CREATE TABLE receipts (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    target          BLOB NOT NULL,              -- content id
    member          BLOB NOT NULL,
    status          INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, target, member)
) WITHOUT ROWID;

-- Receipts this user owes, sent together after a sync or a read.
CREATE TABLE receipts_due (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    target          BLOB NOT NULL,
    status          INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, status, target)
) WITHOUT ROWID;

-- Calls (content-v1.md §7.11): one row per call, its last offer or answer
-- and candidates kept for a client that picks it up late.
CREATE TABLE calls (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    call_id         BLOB NOT NULL,
    outgoing        INTEGER NOT NULL,
    video           INTEGER NOT NULL,
    state           TEXT NOT NULL,              -- ringing, active, ended, missed, declined
    started_at      INTEGER NOT NULL,
    answered_at     INTEGER,
    ended_at        INTEGER,
    offer           TEXT,
    answer          TEXT,
    candidates      TEXT NOT NULL DEFAULT '',   -- one per line, both sides'
    PRIMARY KEY (conversation_id, call_id)
) WITHOUT ROWID;

-- A message sent while a timer is set leaves the relay with it.
ALTER TABLE outbox ADD COLUMN ttl_secs INTEGER;
