-- Each user's own settings of a conversation (im.ConversationSettings),
-- keyed by user first, so that a user's changed settings are one range of
-- the primary key. A row exists once a change changed something, and is
-- kept when the settings go back to nothing, so that the change is still
-- listed. updated_at is unix microseconds. IF NOT EXISTS because MySQL
-- commits DDL at once: a crash before the migration is recorded runs it
-- again.

CREATE TABLE IF NOT EXISTS {{prefix}}conversation_settings (
    user_id         VARBINARY(128) NOT NULL,
    conversation_id VARBINARY(272) NOT NULL,
    pinned          BOOLEAN NOT NULL,
    muted           BOOLEAN NOT NULL,
    hidden_up_to    BIGINT NOT NULL,
    cleared_up_to   BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
) ENGINE=InnoDB;
