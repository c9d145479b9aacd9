-- Huitong schema 19: when each institution's data first reached Huitong (its go-live).
--
-- The timeliness rules judge how long data took to arrive. An institution's records from
-- before its feed went live can only arrive late (they are its history, loaded once at
-- onboarding), so events that ended before this moment are not judged unless a rule's
-- `judge_backfill` parameter says so; the region document can set the date instead
-- (`institutions."Organization/<id>".live_since`). Organizations are "Organization/<id>"
-- references, or "unknown"; times are microseconds since 1970-01-01T00:00Z (UTC).
CREATE TABLE quality_go_live (
    organization       TEXT   PRIMARY KEY,
    first_received_at  BIGINT NOT NULL
);
