-- Huitong schema 9: the unmapped-codes queue of ingest translation.
-- One row per local code (of one institution) per record that carried it without a standard
-- translation. The queue lists codes grouped from these rows (records affected, first and
-- last seen); re-translation after a mapping is accepted finds exactly the records to rewrite.
-- Times are microseconds since 1970-01-01T00:00Z (UTC); institutions are
-- "Organization/<id>", or "region" when the record names none. A coding without a system
-- is recorded under the system "".
CREATE TABLE terminology_unmapped (
    institution  TEXT   NOT NULL,
    system       TEXT   NOT NULL,
    code         TEXT   NOT NULL,
    res_type     TEXT   NOT NULL,
    res_id       TEXT   NOT NULL,
    display      TEXT,
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    PRIMARY KEY (institution, system, code, res_type, res_id)
);
