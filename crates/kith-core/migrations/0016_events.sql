-- The event log (docs/api.md, "Events"): what changed in the profile, in
-- the order it was committed, written by triggers in the same transaction
-- as the change itself, whatever process or code path made it. A client of
-- the daemon's API reads it from a cursor (`seq`) and misses nothing, even
-- across restarts of either side. An event names what changed; its current
-- state is read when the event is delivered. Kept 30 days.
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    conversation_id TEXT,                       -- no foreign key: outlives it
    ref             TEXT,                       -- message, call or introduction id (hex)
    at              INTEGER NOT NULL
);

CREATE TRIGGER events_message_added AFTER INSERT ON messages BEGIN
    INSERT INTO events (kind, conversation_id, ref, at)
    VALUES ('message', NEW.conversation_id, lower(hex(NEW.message_id)),
            CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_message_changed AFTER UPDATE ON messages
WHEN OLD.text IS NOT NEW.text OR OLD.edited IS NOT NEW.edited OR OLD.deleted IS NOT NEW.deleted
  OR OLD.state IS NOT NEW.state OR OLD.subject IS NOT NEW.subject OR OLD.data IS NOT NEW.data
  OR OLD.expires_at IS NOT NEW.expires_at
BEGIN
    INSERT INTO events (kind, conversation_id, ref, at)
    VALUES ('message-changed', NEW.conversation_id, lower(hex(NEW.message_id)),
            CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_message_removed AFTER DELETE ON messages BEGIN
    INSERT INTO events (kind, conversation_id, ref, at)
    VALUES ('message-removed', OLD.conversation_id, lower(hex(OLD.message_id)),
            CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

-- Reactions and receipts name their message by content id.
CREATE TRIGGER events_reaction_set AFTER INSERT ON reactions BEGIN
    INSERT INTO events (kind, conversation_id, ref, at)
    SELECT 'message-changed', m.conversation_id, lower(hex(m.message_id)),
           CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM messages m WHERE m.conversation_id = NEW.conversation_id AND m.content_id = NEW.target;
END;
CREATE TRIGGER events_reaction_changed AFTER UPDATE ON reactions BEGIN
    INSERT INTO events (kind, conversation_id, ref, at)
    SELECT 'message-changed', m.conversation_id, lower(hex(m.message_id)),
           CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM messages m WHERE m.conversation_id = NEW.conversation_id AND m.content_id = NEW.target;
END;
CREATE TRIGGER events_reaction_removed AFTER DELETE ON reactions BEGIN
    INSERT INTO events (kind, conversation_id, ref, at)
    SELECT 'message-changed', m.conversation_id, lower(hex(m.message_id)),
           CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM messages m WHERE m.conversation_id = OLD.conversation_id AND m.content_id = OLD.target;
END;
CREATE TRIGGER events_receipt_added AFTER INSERT ON receipts BEGIN
    INSERT INTO events (kind, conversation_id, ref, at)
    SELECT 'message-changed', m.conversation_id, lower(hex(m.message_id)),
           CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM messages m WHERE m.conversation_id = NEW.conversation_id AND m.content_id = NEW.target;
END;
CREATE TRIGGER events_receipt_changed AFTER UPDATE ON receipts
WHEN OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO events (kind, conversation_id, ref, at)
    SELECT 'message-changed', m.conversation_id, lower(hex(m.message_id)),
           CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM messages m WHERE m.conversation_id = NEW.conversation_id AND m.content_id = NEW.target;
END;

-- A file's copy saved or gone.
CREATE TRIGGER events_file_changed AFTER UPDATE ON files
WHEN OLD.path IS NOT NEW.path OR OLD.downloaded IS NOT NEW.downloaded OR OLD.gone IS NOT NEW.gone
BEGIN
    INSERT INTO events (kind, conversation_id, ref, at)
    VALUES ('message-changed', NEW.conversation_id, lower(hex(NEW.message_id)),
            CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_conversation_added AFTER INSERT ON conversations BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('conversation', NEW.id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_conversation_changed AFTER UPDATE ON conversations
WHEN OLD.state IS NOT NEW.state OR OLD.contact_name IS NOT NEW.contact_name
  OR OLD.local_name IS NOT NEW.local_name OR OLD.my_name IS NOT NEW.my_name
  OR OLD.unread IS NOT NEW.unread OR OLD.blocked IS NOT NEW.blocked
  OR OLD.timer IS NOT NEW.timer OR OLD.receipts IS NOT NEW.receipts
  OR OLD.closed_reason IS NOT NEW.closed_reason OR OLD.last_activity IS NOT NEW.last_activity
  OR OLD.auto_download_max IS NOT NEW.auto_download_max
BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('conversation', NEW.id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_conversation_removed AFTER DELETE ON conversations BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('conversation-removed', OLD.id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_member_added AFTER INSERT ON group_members BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('members', NEW.conversation_id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
CREATE TRIGGER events_member_changed AFTER UPDATE ON group_members
WHEN OLD.display_name IS NOT NEW.display_name
BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('members', NEW.conversation_id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
CREATE TRIGGER events_member_removed AFTER DELETE ON group_members BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('members', OLD.conversation_id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_call_added AFTER INSERT ON calls BEGIN
    INSERT INTO events (kind, conversation_id, ref, at)
    VALUES ('call', NEW.conversation_id, lower(hex(NEW.call_id)),
            CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
CREATE TRIGGER events_call_changed AFTER UPDATE ON calls BEGIN
    INSERT INTO events (kind, conversation_id, ref, at)
    VALUES ('call', NEW.conversation_id, lower(hex(NEW.call_id)),
            CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_introduction_added AFTER INSERT ON introductions BEGIN
    INSERT INTO events (kind, ref, at)
    VALUES ('introduction', lower(hex(NEW.id)), CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
CREATE TRIGGER events_introduction_changed AFTER UPDATE ON introductions
WHEN OLD.state IS NOT NEW.state
BEGIN
    INSERT INTO events (kind, ref, at)
    VALUES ('introduction', lower(hex(NEW.id)), CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;

CREATE TRIGGER events_integrity AFTER INSERT ON integrity_events BEGIN
    INSERT INTO events (kind, conversation_id, at)
    VALUES ('integrity', NEW.conversation_id, CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
CREATE TRIGGER events_introduction_made AFTER INSERT ON introductions_made BEGIN
    INSERT INTO events (kind, ref, at)
    VALUES ('introduction', lower(hex(NEW.id)), CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
CREATE TRIGGER events_introduction_made_changed AFTER UPDATE ON introductions_made
WHEN OLD.a_state IS NOT NEW.a_state OR OLD.b_state IS NOT NEW.b_state OR OLD.state IS NOT NEW.state
BEGIN
    INSERT INTO events (kind, ref, at)
    VALUES ('introduction', lower(hex(NEW.id)), CAST(unixepoch('subsec') * 1000 AS INTEGER));
END;
