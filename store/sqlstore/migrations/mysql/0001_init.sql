-- The initial schema. Ids are VARBINARY sized in bytes to im.MaxIDLength
-- and im.MaxConversationIDLen: compared byte by byte, case-sensitive and
-- without the trailing-space padding of the PAD SPACE collations, so that
-- usernames and ids match exactly on MySQL and MariaDB alike. Strings the
-- server treats as opaque are LONGBLOB, stored as given. Times are unix
-- microseconds. MySQL commits DDL implicitly, so every statement here must
-- be safe to run again after a failure half-way.

CREATE TABLE IF NOT EXISTS {{prefix}}conversations (
    id      VARBINARY(272) NOT NULL,
    max_seq BIGINT NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS {{prefix}}messages (
    conversation_id VARBINARY(272) NOT NULL,
    seq             BIGINT NOT NULL,
    server_id       LONGBLOB NOT NULL,
    sender_id       VARBINARY(128) NOT NULL,
    receiver_id     LONGBLOB NOT NULL,
    client_msg_id   VARBINARY(128) NOT NULL,
    type            INT NOT NULL,
    content         LONGBLOB NOT NULL,
    extra           LONGBLOB NOT NULL,
    attached_info   LONGBLOB NOT NULL,
    send_time       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE KEY dedup (sender_id, client_msg_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS {{prefix}}members (
    user_id         VARBINARY(128) NOT NULL,
    conversation_id VARBINARY(272) NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS {{prefix}}accounts (
    user_id       VARBINARY(128) NOT NULL,
    username      VARBINARY(128) NOT NULL,
    nickname      LONGBLOB NOT NULL,
    password_hash LONGBLOB NOT NULL,
    disabled      BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (user_id),
    UNIQUE KEY username (username)
) ENGINE=InnoDB;
