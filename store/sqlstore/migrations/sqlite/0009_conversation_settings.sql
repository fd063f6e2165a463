-- Each user's own settings of a conversation (im.ConversationSettings),
-- keyed by user first, so that a user's changed settings are one range of
-- the primary key. A row exists once a change changed something, and is
-- kept when the settings go back to nothing, so that the change is still
-- listed. updated_at is unix microseconds. One statement, so that it runs
-- once or not at all.

CREATE TABLE {{prefix}}conversation_settings (
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    pinned          INTEGER NOT NULL,
    muted           INTEGER NOT NULL,
    hidden_up_to    INTEGER NOT NULL,
    cleared_up_to   INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
) STRICT, WITHOUT ROWID;
