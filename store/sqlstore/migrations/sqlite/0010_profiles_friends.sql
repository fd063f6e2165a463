-- Profiles, search, single-token revocation, friends, blocks, group mutes
-- and join requests.
--
-- accounts: the rest of the profile (auth.Account), updated_at 0 for never
-- updated, and nickname_key, the account's auth.NicknameKey (at most its
-- first 1024 bytes), which SearchAccounts reads as a range of an index.
-- The key is a BLOB, like the nickname: compared byte by byte.
--
-- The backfill lower-cases with SQLite's lower(), which folds only ASCII
-- letters (without the ICU extension): a nickname with upper-case letters
-- beyond ASCII, set before this migration, is found under its Go key only
-- once it changes. Every write after this migration stores the key Go
-- computes.

ALTER TABLE {{prefix}}accounts ADD COLUMN avatar BLOB NOT NULL DEFAULT x'';

ALTER TABLE {{prefix}}accounts ADD COLUMN signature BLOB NOT NULL DEFAULT x'';

ALTER TABLE {{prefix}}accounts ADD COLUMN gender INTEGER NOT NULL DEFAULT 0;

ALTER TABLE {{prefix}}accounts ADD COLUMN birth INTEGER NOT NULL DEFAULT 0;

ALTER TABLE {{prefix}}accounts ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;

ALTER TABLE {{prefix}}accounts ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

ALTER TABLE {{prefix}}accounts ADD COLUMN nickname_key BLOB NOT NULL DEFAULT x'';

UPDATE {{prefix}}accounts SET nickname_key = substr(CAST(lower(nickname) AS BLOB), 1, 1024);

CREATE INDEX {{prefix}}accounts_nickname_key ON {{prefix}}accounts (nickname_key, user_id);

-- Single tokens revoked before they expire; expires_at (unix microseconds)
-- lets RevokeToken drop the expired ones, oldest first.
CREATE TABLE {{prefix}}revoked_tokens (
    token_id   BLOB NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX {{prefix}}revoked_tokens_expires ON {{prefix}}revoked_tokens (expires_at);

-- A friendship is two rows, one per side, each with its own remark. The
-- writer's lock on the database orders the operations on a pair; the
-- other dialects have a friend_pairs table for it.
CREATE TABLE {{prefix}}friends (
    user_id    TEXT NOT NULL,
    friend_id  TEXT NOT NULL,
    remark     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, friend_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE {{prefix}}friend_requests (
    from_id    TEXT NOT NULL,
    to_id      TEXT NOT NULL,
    message    BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (from_id, to_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX {{prefix}}friend_requests_to ON {{prefix}}friend_requests (to_id, from_id);

CREATE TABLE {{prefix}}user_blocks (
    blocker_id TEXT NOT NULL,
    blocked_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX {{prefix}}user_blocks_blocked ON {{prefix}}user_blocks (blocked_id, blocker_id);

-- Group mutes: mute_all lets only admins and the owner send; muted_until
-- (unix microseconds, 0 for not muted) keeps a member from sending until
-- then.
ALTER TABLE {{prefix}}chat_groups ADD COLUMN mute_all INTEGER NOT NULL DEFAULT 0;

ALTER TABLE {{prefix}}group_members ADD COLUMN muted_until INTEGER NOT NULL DEFAULT 0;

CREATE TABLE {{prefix}}group_join_requests (
    group_id   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    message    BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX {{prefix}}group_join_requests_time ON {{prefix}}group_join_requests (group_id, created_at, user_id);
