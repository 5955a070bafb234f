-- The key whose signature consumes a read-once blob (relay.md §5.2): a
-- fetch without the secret behind the link consumes nothing. NULL for
-- other blobs, and for read-once blobs made before this migration.
ALTER TABLE blobs ADD COLUMN claim_key BYTEA;
