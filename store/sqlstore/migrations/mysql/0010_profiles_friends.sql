-- Profiles, search, single-token revocation, friends, blocks, group mutes
-- and join requests.
--
-- accounts: the rest of the profile (auth.Account), updated_at 0 for never
-- updated, and nickname_key, the account's auth.NicknameKey (at most its
-- first 1024 bytes), which SearchAccounts reads as a range of an index.
-- The key is VARBINARY, like the ids: compared byte by byte, without the
-- trailing-space padding of utf8mb4_bin, so that a range of keys is
-- exactly the keys with a prefix.
--
-- The backfill lower-cases with LOWER() of the utf8mb4 character set's
-- default collation, which folds nearly as Go's strings.ToLower (some
-- letters outside Latin, Greek and Cyrillic differ), and cuts the key at
-- 256 characters. Every write after this migration stores the key Go
-- computes. A nickname that is not UTF-8 is copied unfolded: the regular
-- expression picks the valid ones, since converting the others would fail
-- the statement.
--
-- MySQL commits DDL implicitly, so every statement here must be safe to
-- run again after a failure half-way: the tables are created only if they
-- are missing, and each ALTER TABLE runs only if its first column is
-- missing (one ALTER adds all of a table's columns and indexes at once).

CREATE TABLE IF NOT EXISTS {{prefix}}revoked_tokens (
    token_id   VARBINARY(128) NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    KEY expires (expires_at)
) ENGINE=InnoDB;

-- A friendship is two rows, one per side, each with its own remark.
CREATE TABLE IF NOT EXISTS {{prefix}}friends (
    user_id    VARBINARY(128) NOT NULL,
    friend_id  VARBINARY(128) NOT NULL,
    remark     LONGBLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, friend_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS {{prefix}}friend_requests (
    from_id    VARBINARY(128) NOT NULL,
    to_id      VARBINARY(128) NOT NULL,
    message    LONGBLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (from_id, to_id),
    KEY incoming (to_id, from_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS {{prefix}}user_blocks (
    blocker_id VARBINARY(128) NOT NULL,
    blocked_id VARBINARY(128) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    KEY blocked (blocked_id, blocker_id)
) ENGINE=InnoDB;

-- One row per pair of users (user_a < user_b) that a friend operation
-- has touched: the operations on a pair lock it first, so that they take
-- turns across processes. It holds nothing else and is never deleted.
CREATE TABLE IF NOT EXISTS {{prefix}}friend_pairs (
    user_a VARBINARY(128) NOT NULL,
    user_b VARBINARY(128) NOT NULL,
    PRIMARY KEY (user_a, user_b)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS {{prefix}}group_join_requests (
    group_id   VARBINARY(128) NOT NULL,
    user_id    VARBINARY(128) NOT NULL,
    message    LONGBLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id),
    KEY pending (group_id, created_at, user_id)
) ENGINE=InnoDB;

SET @imserver_ddl = (SELECT IF(COUNT(*) = 0, 'ALTER TABLE {{prefix}}accounts ADD COLUMN nickname_key VARBINARY(1024) NOT NULL DEFAULT '''', ADD COLUMN avatar LONGBLOB NOT NULL DEFAULT '''', ADD COLUMN signature LONGBLOB NOT NULL DEFAULT '''', ADD COLUMN gender INT NOT NULL DEFAULT 0, ADD COLUMN birth BIGINT NOT NULL DEFAULT 0, ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0, ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE, ADD KEY nickname_key (nickname_key, user_id)', 'DO 0') FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{{prefix}}accounts' AND column_name = 'nickname_key');

PREPARE imserver_ddl FROM @imserver_ddl;

EXECUTE imserver_ddl;

DEALLOCATE PREPARE imserver_ddl;

UPDATE {{prefix}}accounts SET nickname_key = LEFT(nickname, 1024);

UPDATE {{prefix}}accounts SET nickname_key = CAST(LEFT(LOWER(CONVERT(nickname USING utf8mb4)), 256) AS BINARY) WHERE HEX(nickname) REGEXP '^([0-7][0-9A-F]|(C[2-9A-F]|D[0-9A-F])[89AB][0-9A-F]|E0[AB][0-9A-F][89AB][0-9A-F]|E[1-9ABCEF][89AB][0-9A-F][89AB][0-9A-F]|ED[89][0-9A-F][89AB][0-9A-F]|F0(9[0-9A-F]|[AB][0-9A-F])([89AB][0-9A-F]){2}|F[1-3]([89AB][0-9A-F]){3}|F48[0-9A-F]([89AB][0-9A-F]){2})*$';

-- Group mutes: mute_all lets only admins and the owner send; muted_until
-- (unix microseconds, 0 for not muted) keeps a member from sending until
-- then.
SET @imserver_ddl = (SELECT IF(COUNT(*) = 0, 'ALTER TABLE {{prefix}}chat_groups ADD COLUMN mute_all BOOLEAN NOT NULL DEFAULT FALSE', 'DO 0') FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{{prefix}}chat_groups' AND column_name = 'mute_all');

PREPARE imserver_ddl FROM @imserver_ddl;

EXECUTE imserver_ddl;

DEALLOCATE PREPARE imserver_ddl;

SET @imserver_ddl = (SELECT IF(COUNT(*) = 0, 'ALTER TABLE {{prefix}}group_members ADD COLUMN muted_until BIGINT NOT NULL DEFAULT 0', 'DO 0') FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{{prefix}}group_members' AND column_name = 'muted_until');

PREPARE imserver_ddl FROM @imserver_ddl;

EXECUTE imserver_ddl;

DEALLOCATE PREPARE imserver_ddl;
