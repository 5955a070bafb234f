-- Chunk bodies of the blobs made from now on live in one file per blob
-- beside the database (`<db>-blobs/<hex of id_hash>`, chunk i at offset
-- i × chunk_size), written once and synced before the chunk counts as
-- stored, instead of twice (log, then table) inside the database. The
-- database keeps which chunks are there. Blobs made before this migration
-- keep their chunks in blob_chunks.
ALTER TABLE blobs ADD COLUMN in_file INTEGER NOT NULL DEFAULT 0;
CREATE TABLE blob_file_chunks (
    blob_id INTEGER NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
    idx     INTEGER NOT NULL,
    stored  INTEGER NOT NULL,   -- 0 while its bytes are being written, 1 once synced
    PRIMARY KEY (blob_id, idx)
);
