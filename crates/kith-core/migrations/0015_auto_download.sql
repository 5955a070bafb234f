-- Automatic download (files-v1.md §8): files of at most this many bytes
-- in the conversation are fetched as they arrive, into the profile's
-- `downloads` directory. NULL: off, the default.
ALTER TABLE conversations ADD COLUMN auto_download_max INTEGER;
-- A file refused once when fetched automatically (altered, expired) is not
-- tried again; one whose relay could not be reached is, at the next sync.
ALTER TABLE files ADD COLUMN auto_tried INTEGER NOT NULL DEFAULT 0;
