-- Groups and their members. The table is chat_groups because GROUPS is a
-- reserved word in MySQL 8, and every dialect uses the same names. Names
-- and texts are BLOBs, stored as given (an introduction may hold a NUL).
-- member_count is kept by the Store, in the transaction that changes the
-- members. Times are unix microseconds. A group row keeps its rowid: it
-- may hold 24 KiB of text.

CREATE TABLE {{prefix}}chat_groups (
    id           TEXT NOT NULL PRIMARY KEY,
    name         BLOB NOT NULL,
    face_url     BLOB NOT NULL,
    introduction BLOB NOT NULL,
    notification BLOB NOT NULL,
    extra        BLOB NOT NULL,
    owner_id     TEXT NOT NULL,
    join_policy  INTEGER NOT NULL,
    member_count INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE {{prefix}}group_members (
    group_id  TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    role      INTEGER NOT NULL,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX {{prefix}}group_members_user ON {{prefix}}group_members (user_id, group_id);
