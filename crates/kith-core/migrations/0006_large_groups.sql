-- Groups at scale (issue 13, group-v1.md §6.3).

-- A group Welcome waiting for the group's state it names (the ratchet tree
-- and roster of its epoch, published once as a blob): the runtime fetches
-- it and completes the join.
ALTER TABLE conversations ADD COLUMN pending_welcome BLOB;

-- An add's own Welcome is in `welcome`; `state_ref` is the GroupStateRef of
-- the state published for the commit that carries it.
ALTER TABLE group_ops ADD COLUMN state_ref BLOB;

-- A link joiner's recognition tags, from its JoinRequest: the admin puts
-- them in the commit's CommitKeys, so the joiner publishes no MemberTags
-- message of its own (group-v1.md §7.1).
ALTER TABLE group_ops ADD COLUMN tags BLOB;
