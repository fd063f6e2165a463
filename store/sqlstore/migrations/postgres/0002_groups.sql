-- Groups and their members. The table is chat_groups because GROUPS is a
-- reserved word in MySQL 8, and every dialect uses the same names. Ids are
-- text in the "C" collation, as in 0001; names and texts are bytea, stored
-- as given (text could not hold a NUL, which valid UTF-8 may contain).
-- member_count is kept by the Store, in the transaction that changes the
-- members. Times are unix microseconds.

CREATE TABLE {{prefix}}chat_groups (
    id           text COLLATE "C" PRIMARY KEY,
    name         bytea NOT NULL,
    face_url     bytea NOT NULL,
    introduction bytea NOT NULL,
    notification bytea NOT NULL,
    extra        bytea NOT NULL,
    owner_id     text COLLATE "C" NOT NULL,
    join_policy  integer NOT NULL,
    member_count bigint NOT NULL,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL
);

CREATE TABLE {{prefix}}group_members (
    group_id  text COLLATE "C" NOT NULL,
    user_id   text COLLATE "C" NOT NULL,
    role      integer NOT NULL,
    joined_at bigint NOT NULL,
    PRIMARY KEY (group_id, user_id)
);

CREATE INDEX {{prefix}}group_members_user ON {{prefix}}group_members (user_id, group_id);
