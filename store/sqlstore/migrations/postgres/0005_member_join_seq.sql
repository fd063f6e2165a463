-- The seq of the notice a membership began with (im.GroupMember.JoinSeq),
-- written by the transaction that adds the member. Memberships stored
-- before take 0: they read the whole history, as they did. One statement,
-- so that it runs once or not at all.

ALTER TABLE {{prefix}}group_members ADD COLUMN join_seq bigint NOT NULL DEFAULT 0;
