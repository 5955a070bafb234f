-- ContentV1 (content-v1.md): a mail's subject; NULL for other messages.
ALTER TABLE messages ADD COLUMN subject TEXT;
