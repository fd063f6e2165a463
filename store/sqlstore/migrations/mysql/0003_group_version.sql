-- A group's version: 1 at creation, one more with every change, which is
-- made only if the version is still the one it was decided on. Groups
-- created before start at 1.
-- MySQL commits DDL implicitly: a process killed after the ALTER and
-- before the migration is recorded runs it again at its next start, so
-- the column is added only if it is missing.

SET @imserver_ddl = (SELECT IF(COUNT(*) = 0, 'ALTER TABLE {{prefix}}chat_groups ADD COLUMN version BIGINT NOT NULL DEFAULT 1', 'DO 0') FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{{prefix}}chat_groups' AND column_name = 'version');

PREPARE imserver_ddl FROM @imserver_ddl;

EXECUTE imserver_ddl;

DEALLOCATE PREPARE imserver_ddl;
