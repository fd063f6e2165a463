-- Each user's token version: raised by one every time the user's tokens
-- are revoked. Kept per user id, account or not; a user without a row is
-- at version 0. One statement, so that it runs once or not at all.

CREATE TABLE {{prefix}}token_versions (
    user_id TEXT NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL
) STRICT;
