-- The seq of the notice a membership began with (im.GroupMember.JoinSeq),
-- written by the transaction that adds the member. Memberships stored
-- before take 0: they read the whole history, as they did.
-- MySQL commits DDL implicitly: a process killed after the ALTER and
-- before the migration is recorded runs it again at its next start, so
-- the column is added only if it is missing.

SET @imserver_ddl = (SELECT IF(COUNT(*) = 0, 'ALTER TABLE {{prefix}}group_members ADD COLUMN join_seq BIGINT NOT NULL DEFAULT 0', 'DO 0') FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{{prefix}}group_members' AND column_name = 'join_seq');

PREPARE imserver_ddl FROM @imserver_ddl;

EXECUTE imserver_ddl;

DEALLOCATE PREPARE imserver_ddl;
