-- Edits and deletes (content-v1.md §7.7): only a message's author may
-- change it, so each message keeps who wrote it (identity key in the
-- conversation; this user's own for outgoing messages).
ALTER TABLE messages ADD COLUMN author BLOB;
ALTER TABLE messages ADD COLUMN edited INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
