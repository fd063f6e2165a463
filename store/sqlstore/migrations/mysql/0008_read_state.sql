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
-- revoked_by. MySQL commits DDL implicitly, and a process killed before
-- the migration is recorded runs it again at its next start: the table is
-- created only if it is missing, and both columns are added by one
-- statement, only if the first is missing.

CREATE TABLE IF NOT EXISTS {{prefix}}read_states (
    conversation_id VARBINARY(272) NOT NULL,
    user_id         VARBINARY(128) NOT NULL,
    read_seq        BIGINT NOT NULL,
    delivered_seq   BIGINT NOT NULL DEFAULT 0,
    mentioned_seq   BIGINT NOT NULL DEFAULT 0,
    updated_at      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
) ENGINE=InnoDB;

SET @imserver_ddl = (SELECT IF(COUNT(*) = 0, 'ALTER TABLE {{prefix}}messages ADD COLUMN revoked_by VARBINARY(128) NOT NULL DEFAULT '''', ADD COLUMN revoked_at BIGINT NOT NULL DEFAULT 0', 'DO 0') FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{{prefix}}messages' AND column_name = 'revoked_by');

PREPARE imserver_ddl FROM @imserver_ddl;

EXECUTE imserver_ddl;

DEALLOCATE PREPARE imserver_ddl;
