-- Huitong schema 11: bulk NDJSON import jobs ($import, huitong.ingest.bulk_import).
-- Times are microseconds since 1970-01-01T00:00Z (UTC); JSON columns hold UTF-8 JSON text.

-- One $import request: its inputs and where it stands.
CREATE TABLE bulk_import_jobs (
    id          TEXT    PRIMARY KEY,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    status      TEXT    NOT NULL,
    finished_at BIGINT,
    error       TEXT
);

-- One input file of a job. ``line`` is the last line whose resource is committed: it
-- changes in the same transaction as the resources, so a restart resumes exactly there.
CREATE TABLE bulk_import_files (
    job_id      TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    url         TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    type        TEXT,
    line        BIGINT  NOT NULL DEFAULT 0,
    loaded      BIGINT  NOT NULL DEFAULT 0,
    failed      BIGINT  NOT NULL DEFAULT 0,
    errors      TEXT,
    done        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, position)
);
