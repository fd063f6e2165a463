-- How much of a group's history a new member reads: 0 from her joining
-- on (im.HistoryFromJoin), 1 all of it (im.HistoryFull). Groups created
-- before take 0, which changes nothing for their members of today (their
-- join_seq, 0005, is 0) and hides the past from those who join later.
-- MySQL commits DDL implicitly: a process killed after the ALTER and
-- before the migration is recorded runs it again at its next start, so
-- the column is added only if it is missing.

SET @imserver_ddl = (SELECT IF(COUNT(*) = 0, 'ALTER TABLE {{prefix}}chat_groups ADD COLUMN history INT NOT NULL DEFAULT 0', 'DO 0') FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{{prefix}}chat_groups' AND column_name = 'history');

PREPARE imserver_ddl FROM @imserver_ddl;

EXECUTE imserver_ddl;

DEALLOCATE PREPARE imserver_ddl;
