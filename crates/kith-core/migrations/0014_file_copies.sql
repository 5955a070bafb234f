-- A file message deleted for everyone, or gone with its timer, takes the
-- copy kith downloaded with it (files-v1.md §7) — never the file a sender
-- sent from.
ALTER TABLE files ADD COLUMN downloaded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN gone INTEGER NOT NULL DEFAULT 0;
