-- Read, delivered and mentioned positions, one row per conversation and
-- user, keyed by the conversation first: ConversationReadStates reads one
-- key range, and ReadStates looks up (conversation, user) pairs by the
-- whole key, so no second index is needed. A user without a row is at 0
-- everywhere.
-- updated_at is when a receipt last moved a position (unix microseconds,
-- 0 for never): a sender's own message, which raises read_seq, leaves it.
--
-- A recalled message's tombstone: who recalled it and when (unix
-- microseconds). Messages stored before read as not recalled: an empty
-- revoked_by. A column with a constant default is added without
-- rewriting the table.

CREATE TABLE {{prefix}}read_states (
    conversation_id text COLLATE "C" NOT NULL,
    user_id         text COLLATE "C" NOT NULL,
    read_seq        bigint NOT NULL,
    delivered_seq   bigint NOT NULL DEFAULT 0,
    mentioned_seq   bigint NOT NULL DEFAULT 0,
    updated_at      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);

ALTER TABLE {{prefix}}messages
    ADD COLUMN revoked_by text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN revoked_at bigint NOT NULL DEFAULT 0;
