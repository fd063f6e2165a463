-- A group's version: 1 at creation, one more with every change, which is
-- made only if the version is still the one it was decided on. Groups
-- created before start at 1. One statement, so that it runs once or not
-- at all.

ALTER TABLE {{prefix}}chat_groups ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
