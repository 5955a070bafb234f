-- The engine rebuilt (issue 12).

-- A group's message or proposal waiting in the outbox is appended only at
-- the channel's head (relay.md §5.2a, group-v1.md §8): `epoch` is the MLS
-- epoch it was made in. A message whose group moved to a later epoch before
-- it was taken is encrypted again from `frame`; a proposal is dropped.
ALTER TABLE outbox ADD COLUMN epoch INTEGER;
ALTER TABLE outbox ADD COLUMN frame BLOB;

-- A member leaving a group: the epoch of its last leave proposal. It
-- proposes again in every later epoch until a commit removes it
-- (group-v1.md §9).
ALTER TABLE conversations ADD COLUMN leave_epoch INTEGER;

-- A message whose content kind this version does not know, marked by its
-- sender as critical: its text is the sender's fallback (pair-v1.md §4.1).
ALTER TABLE messages ADD COLUMN needs_newer INTEGER NOT NULL DEFAULT 0;

-- Group members' recognition tags (group-v1.md §7.1), concatenated, and
-- the blocked contact (1:1 conversation) a member turned out to be: its
-- messages in the group are not shown.
ALTER TABLE group_members ADD COLUMN tags BLOB;
ALTER TABLE group_members ADD COLUMN blocked_as TEXT;
