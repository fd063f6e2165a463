-- Read and delivered positions, one row per conversation and user, keyed
-- by the conversation first: ConversationReadStates reads one key range,
-- and ReadStates looks up (conversation, user) pairs by the whole key, so
-- no second index is needed. A user without a row is at 0 and 0.
--
-- A recalled message's tombstone: who recalled it and when (unix
-- microseconds). Messages stored before read as not recalled: an empty
-- revoked_by.

CREATE TABLE {{prefix}}read_states (
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    read_seq        INTEGER NOT NULL,
    delivered_seq   INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
) STRICT, WITHOUT ROWID;

ALTER TABLE {{prefix}}messages ADD COLUMN revoked_by TEXT NOT NULL DEFAULT '';

ALTER TABLE {{prefix}}messages ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
