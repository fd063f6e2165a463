-- Groups and their members. The table is chat_groups because GROUPS is a
-- reserved word in MySQL 8, and every dialect uses the same names. Ids are
-- VARBINARY(128), im.MaxIDLength bytes, as in 0001: the keys stay far
-- below InnoDB's limit whatever the character set. Names and texts are
-- LONGBLOB, stored as given and kept off the row, so that a group's 24 KiB
-- of text never meets the 64 KiB row limit. member_count is kept by the
-- Store, in the transaction that changes the members. Times are unix
-- microseconds. MySQL commits DDL implicitly, so every statement here must
-- be safe to run again after a failure half-way.

CREATE TABLE IF NOT EXISTS {{prefix}}chat_groups (
    id           VARBINARY(128) NOT NULL,
    name         LONGBLOB NOT NULL,
    face_url     LONGBLOB NOT NULL,
    introduction LONGBLOB NOT NULL,
    notification LONGBLOB NOT NULL,
    extra        LONGBLOB NOT NULL,
    owner_id     VARBINARY(128) NOT NULL,
    join_policy  INT NOT NULL,
    member_count BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS {{prefix}}group_members (
    group_id  VARBINARY(128) NOT NULL,
    user_id   VARBINARY(128) NOT NULL,
    role      INT NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id),
    KEY user_groups (user_id, group_id)
) ENGINE=InnoDB;
