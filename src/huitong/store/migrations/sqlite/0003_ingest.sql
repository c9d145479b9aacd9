-- Huitong schema 3: the integration engine's channels and message store.
-- Times are microseconds since 1970-01-01T00:00Z (UTC); JSON columns hold UTF-8 JSON text.

-- A channel is one source at one institution (huitong.ingest.channels validates config).
CREATE TABLE ingest_channels (
    id          TEXT    PRIMARY KEY,
    config      TEXT    NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    updated_at  BIGINT  NOT NULL
);

-- Every inbound message, stored raw before it is acknowledged.
CREATE TABLE ingest_messages (
    id              INTEGER PRIMARY KEY,
    channel_id      TEXT    NOT NULL,
    received_at     BIGINT  NOT NULL,
    sender          TEXT    NOT NULL,
    control_id      TEXT,
    message_type    TEXT,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    processed_at    BIGINT,
    raw             BLOB,
    raw_purged_at   BIGINT,
    encoding        TEXT,
    ack_code        TEXT,
    produced        TEXT,
    warnings        TEXT,
    errors          TEXT,
    latency_us      BIGINT
);
-- A message resent by its sender (same sender and control id) is the same message.
CREATE UNIQUE INDEX ingest_messages_dedup ON ingest_messages (channel_id, sender, control_id);
CREATE INDEX ingest_messages_status ON ingest_messages (status, next_attempt_at);
CREATE INDEX ingest_messages_channel_time ON ingest_messages (channel_id, received_at);
CREATE INDEX ingest_messages_time ON ingest_messages (received_at);

-- Which patients a message concerns: identifiers it carried and Patient ids it produced.
CREATE TABLE ingest_message_patients (
    message_id  BIGINT NOT NULL,
    patient     TEXT   NOT NULL
);
CREATE INDEX ingest_message_patients_patient ON ingest_message_patients (patient);
CREATE INDEX ingest_message_patients_message ON ingest_message_patients (message_id);
