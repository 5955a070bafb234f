-- Contact addresses (docs/spec/address-v1.md): a link many people can use
-- to ask this user for a conversation. An address is a conversation row of
-- kind 'address' so that its channel (role 'address') is read, pushed and
-- acknowledged like any other; it is never listed as a conversation.
CREATE TABLE addresses (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id) ON DELETE CASCADE,
    label           TEXT,                       -- the owner's name for it
    secret          BLOB NOT NULL,              -- the link's secret (secret)
    box_key         BLOB NOT NULL,              -- X25519 key requests are sealed to (secret)
    created_at      INTEGER NOT NULL
);

-- Requests that arrived on an address, until accepted or declined.
CREATE TABLE contact_requests (
    id              INTEGER PRIMARY KEY,
    address_id      TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    received_at     INTEGER NOT NULL,
    display_name    TEXT NOT NULL,
    note            TEXT NOT NULL,
    expires_at      INTEGER NOT NULL,
    request         BLOB NOT NULL,              -- the ContactRequest, to accept
    digest          BLOB NOT NULL UNIQUE        -- one request is kept once
);

-- The conversation list's events leave addresses out.
DROP TRIGGER events_conversation_added;
DROP TRIGGER events_conversation_changed;
DROP TRIGGER events_conversation_removed;

CREATE TRIGGER events_conversation_added AFTER INSERT ON conversations
WHEN NEW.kind != 'address'
BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('conversation', NEW.id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_conversation_changed AFTER UPDATE ON conversations
WHEN NEW.kind != 'address' AND (OLD.state IS NOT NEW.state OR OLD.contact_name IS NOT NEW.contact_name
  OR OLD.local_name IS NOT NEW.local_name OR OLD.my_name IS NOT NEW.my_name
  OR OLD.unread IS NOT NEW.unread OR OLD.blocked IS NOT NEW.blocked
  OR OLD.timer IS NOT NEW.timer OR OLD.receipts IS NOT NEW.receipts
  OR OLD.closed_reason IS NOT NEW.closed_reason OR OLD.last_activity IS NOT NEW.last_activity
  OR OLD.auto_download_max IS NOT NEW.auto_download_max)
BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('conversation', NEW.id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_conversation_removed AFTER DELETE ON conversations
WHEN OLD.kind != 'address'
BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('conversation-removed', OLD.id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_request_added AFTER INSERT ON contact_requests BEGIN
    INSERT INTO events (kind, ref, at)
    VALUES ('request', CAST(NEW.id AS TEXT), CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_request_removed AFTER DELETE ON contact_requests BEGIN
    INSERT INTO events (kind, ref, at)
    VALUES ('request-removed', CAST(OLD.id AS TEXT), CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
