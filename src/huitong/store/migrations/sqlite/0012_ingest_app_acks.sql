-- Huitong schema 12: enhanced-mode application acknowledgements waiting for delivery
-- (huitong.ingest.app_acks). Times are microseconds since 1970-01-01T00:00Z (UTC).

-- One application ACK (AA/AE/AR) owed to a sender's return address. Written in the same
-- transaction as the message's final status, so a restart never loses one; the retry
-- worker delivers it over a new MLLP connection with back-off until it is delivered or
-- its tries run out (status 'undelivered', for an operator to see and re-arm).
CREATE TABLE ingest_app_acks (
    id              INTEGER PRIMARY KEY,
    message_id      BIGINT  NOT NULL,
    channel_id      TEXT    NOT NULL,
    host            TEXT    NOT NULL,
    port            INTEGER NOT NULL,
    ack_code        TEXT    NOT NULL,
    payload         BLOB   NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    next_attempt_at BIGINT,
    created_at      BIGINT  NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT
);
-- One application ACK per message: reprocessing replaces a pending one.
CREATE UNIQUE INDEX ingest_app_acks_message ON ingest_app_acks (message_id);
CREATE INDEX ingest_app_acks_due ON ingest_app_acks (status, next_attempt_at);
