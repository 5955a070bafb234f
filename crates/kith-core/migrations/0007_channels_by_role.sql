-- A group with thousands of link inboxes: finding its own channel (role
-- 'conv') must not read them all (measured: at 2,500 links, 95% of the
-- admin's time making links and sending Welcomes went to reading them).
CREATE INDEX channels_by_role ON channels (conversation_id, role);
