-- Every write of a conversation's MLS state moves its version on (a
-- trigger, so no write can forget it). A state read outside the
-- transaction that writes it (a group commit staged around relay calls) is
-- written only if the version is still the one read: a newer state is
-- never overwritten with an older one, which would reuse ratchet
-- generations (issue 12, finding 5).
ALTER TABLE conversations ADD COLUMN mls_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER conversations_mls_version AFTER UPDATE OF mls_state ON conversations
BEGIN
    UPDATE conversations SET mls_version = mls_version + 1 WHERE id = NEW.id;
END;
