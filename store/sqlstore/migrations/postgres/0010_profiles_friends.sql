-- Profiles, search, single-token revocation, friends, blocks, group mutes
-- and join requests.
--
-- accounts: the rest of the profile (auth.Account), updated_at 0 for never
-- updated, and nickname_key, the account's auth.NicknameKey (at most its
-- first 1024 bytes), which SearchAccounts reads as a
-- range of an index. The key is bytea, like the nickname: it compares byte
-- by byte (as COLLATE "C" would, with no collation to get wrong), and any
-- nickname the store holds fits it.
--
-- The backfill lower-cases with the database's lower(), which folds
-- non-ASCII letters as the database's LC_CTYPE does: under "C" only ASCII,
-- under a UTF-8 locale nearly as Go's strings.ToLower. Every write after
-- this migration stores the key Go computes, so a nickname set before it
-- is found exactly as Go folds it once it changes. A nickname that is not
-- UTF-8 (or holds a NUL) is copied unfolded: the regular expression picks
-- the others, since converting it would fail the migration.

ALTER TABLE {{prefix}}accounts
    ADD COLUMN avatar       bytea NOT NULL DEFAULT '\x',
    ADD COLUMN signature    bytea NOT NULL DEFAULT '\x',
    ADD COLUMN gender       integer NOT NULL DEFAULT 0,
    ADD COLUMN birth        bigint NOT NULL DEFAULT 0,
    ADD COLUMN updated_at   bigint NOT NULL DEFAULT 0,
    ADD COLUMN deleted      boolean NOT NULL DEFAULT false,
    ADD COLUMN nickname_key bytea NOT NULL DEFAULT '\x';

UPDATE {{prefix}}accounts SET nickname_key = substring(nickname from 1 for 1024);

UPDATE {{prefix}}accounts SET nickname_key = substring(convert_to(lower(convert_from(nickname, 'UTF8')), 'UTF8') from 1 for 1024) WHERE encode(nickname, 'hex') ~ '^(0[1-9a-f]|[1-7][0-9a-f]|(c[2-9a-f]|d[0-9a-f])[89ab][0-9a-f]|e0[ab][0-9a-f][89ab][0-9a-f]|e[1-9abcef][89ab][0-9a-f][89ab][0-9a-f]|ed[89][0-9a-f][89ab][0-9a-f]|f0(9[0-9a-f]|[ab][0-9a-f])([89ab][0-9a-f]){2}|f[1-3]([89ab][0-9a-f]){3}|f48[0-9a-f]([89ab][0-9a-f]){2})*$';

CREATE INDEX {{prefix}}accounts_nickname_key ON {{prefix}}accounts (nickname_key, user_id);

-- Single tokens revoked before they expire; expires_at (unix microseconds)
-- lets RevokeToken drop the expired ones, oldest first.
CREATE TABLE {{prefix}}revoked_tokens (
    token_id   bytea PRIMARY KEY,
    expires_at bigint NOT NULL
);

CREATE INDEX {{prefix}}revoked_tokens_expires ON {{prefix}}revoked_tokens (expires_at);

-- A friendship is two rows, one per side, each with its own remark.
CREATE TABLE {{prefix}}friends (
    user_id    text COLLATE "C" NOT NULL,
    friend_id  text COLLATE "C" NOT NULL,
    remark     bytea NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (user_id, friend_id)
);

CREATE TABLE {{prefix}}friend_requests (
    from_id    text COLLATE "C" NOT NULL,
    to_id      text COLLATE "C" NOT NULL,
    message    bytea NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (from_id, to_id)
);

CREATE INDEX {{prefix}}friend_requests_to ON {{prefix}}friend_requests (to_id, from_id);

CREATE TABLE {{prefix}}user_blocks (
    blocker_id text COLLATE "C" NOT NULL,
    blocked_id text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);

CREATE INDEX {{prefix}}user_blocks_blocked ON {{prefix}}user_blocks (blocked_id, blocker_id);

-- One row per pair of users (user_a < user_b) that a friend operation
-- has touched: the operations on a pair lock it first, so that they take
-- turns across processes. It holds nothing else and is never deleted (a
-- transaction waiting for a row that another deletes would go on without
-- the lock).
CREATE TABLE {{prefix}}friend_pairs (
    user_a text COLLATE "C" NOT NULL,
    user_b text COLLATE "C" NOT NULL,
    PRIMARY KEY (user_a, user_b)
);

-- Group mutes: mute_all lets only admins and the owner send; muted_until
-- (unix microseconds, 0 for not muted) keeps a member from sending until
-- then.
ALTER TABLE {{prefix}}chat_groups ADD COLUMN mute_all boolean NOT NULL DEFAULT false;

ALTER TABLE {{prefix}}group_members ADD COLUMN muted_until bigint NOT NULL DEFAULT 0;

CREATE TABLE {{prefix}}group_join_requests (
    group_id   text COLLATE "C" NOT NULL,
    user_id    text COLLATE "C" NOT NULL,
    message    bytea NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

CREATE INDEX {{prefix}}group_join_requests_time ON {{prefix}}group_join_requests (group_id, created_at, user_id);
