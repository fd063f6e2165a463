-- The initial schema. TEXT compares byte by byte (the BINARY collation),
-- which is exact. Strings the server treats as opaque are BLOBs, stored as
-- given. Times are unix microseconds. Messages keep a rowid: WITHOUT ROWID
-- tables suit small rows, and a message may hold 64 KiB.

CREATE TABLE {{prefix}}conversations (
    id      TEXT NOT NULL PRIMARY KEY,
    max_seq INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE {{prefix}}messages (
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    server_id       BLOB NOT NULL,
    sender_id       TEXT NOT NULL,
    receiver_id     BLOB NOT NULL,
    client_msg_id   TEXT NOT NULL,
    type            INTEGER NOT NULL,
    content         BLOB NOT NULL,
    extra           BLOB NOT NULL,
    attached_info   BLOB NOT NULL,
    send_time       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) STRICT;

CREATE UNIQUE INDEX {{prefix}}messages_dedup ON {{prefix}}messages (sender_id, client_msg_id);

CREATE TABLE {{prefix}}members (
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE {{prefix}}accounts (
    user_id       TEXT NOT NULL PRIMARY KEY,
    username      TEXT NOT NULL,
    nickname      BLOB NOT NULL,
    password_hash BLOB NOT NULL,
    disabled      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX {{prefix}}accounts_username ON {{prefix}}accounts (username);
