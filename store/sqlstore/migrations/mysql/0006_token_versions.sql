-- Each user's token version: raised by one every time the user's tokens
-- are revoked. Kept per user id, account or not; a user without a row is
-- at version 0. IF NOT EXISTS because MySQL commits DDL at once: a crash
-- before the migration is recorded runs it again.

CREATE TABLE IF NOT EXISTS {{prefix}}token_versions (
    user_id VARBINARY(128) NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL
) ENGINE=InnoDB;
