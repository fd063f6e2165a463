-- The initial schema. Ids are text in the "C" collation: compared and
-- ordered byte by byte, which is exact and the cheapest for the indexes.
-- Strings the server treats as opaque are bytea, so that any byte sequence
-- (NUL, invalid UTF-8) is stored as given. Times are unix microseconds.

CREATE TABLE {{prefix}}conversations (
    id      text COLLATE "C" PRIMARY KEY,
    max_seq bigint NOT NULL
);

CREATE TABLE {{prefix}}messages (
    conversation_id text COLLATE "C" NOT NULL,
    seq             bigint NOT NULL,
    server_id       bytea NOT NULL,
    sender_id       text COLLATE "C" NOT NULL,
    receiver_id     bytea NOT NULL,
    client_msg_id   text COLLATE "C" NOT NULL,
    type            integer NOT NULL,
    content         bytea NOT NULL,
    extra           bytea NOT NULL,
    attached_info   bytea NOT NULL,
    send_time       bigint NOT NULL,
    created_at      bigint NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

CREATE UNIQUE INDEX {{prefix}}messages_dedup ON {{prefix}}messages (sender_id, client_msg_id);

CREATE TABLE {{prefix}}members (
    user_id         text COLLATE "C" NOT NULL,
    conversation_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);

CREATE TABLE {{prefix}}accounts (
    user_id       text COLLATE "C" PRIMARY KEY,
    username      text COLLATE "C" NOT NULL,
    nickname      bytea NOT NULL,
    password_hash bytea NOT NULL,
    disabled      boolean NOT NULL,
    created_at    bigint NOT NULL
);

CREATE UNIQUE INDEX {{prefix}}accounts_username ON {{prefix}}accounts (username);
