-- Huitong schema 4: the master patient index (identity links, blocking keys, review queue).
-- Times are microseconds since 1970-01-01T00:00Z (UTC). Sources are "Patient/<id>" of the
-- Patient records institutions sent; goldens are the ids of the golden Patient resources.

CREATE TABLE mpi_sources (
    source      TEXT   PRIMARY KEY,
    source_org  TEXT,
    golden      TEXT   NOT NULL,
    grade       TEXT   NOT NULL,
    linked_by   TEXT   NOT NULL,
    linked_at   BIGINT NOT NULL,
    reason      TEXT
);
CREATE INDEX mpi_sources_golden ON mpi_sources (golden);

-- Blocking: one row per key of a source record, so a new record finds its candidates by
-- index lookups instead of a scan.
CREATE TABLE mpi_keys (
    key     TEXT NOT NULL,
    source  TEXT NOT NULL
);
CREATE INDEX mpi_keys_key ON mpi_keys (key);
CREATE INDEX mpi_keys_source ON mpi_keys (source);

-- Pairs an operator decided are different people: never proposed again. a < b.
CREATE TABLE mpi_certainly_not (
    a           TEXT   NOT NULL,
    b           TEXT   NOT NULL,
    decided_by  TEXT   NOT NULL,
    decided_at  BIGINT NOT NULL,
    reason      TEXT,
    PRIMARY KEY (a, b)
);

-- Probable and possible matches waiting for a person, with the evidence.
CREATE TABLE mpi_review (
    id              INTEGER PRIMARY KEY,
    source          TEXT   NOT NULL,
    golden          TEXT   NOT NULL,
    matched_source  TEXT,
    grade           TEXT   NOT NULL,
    probability     REAL NOT NULL,
    evidence        TEXT,
    status          TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    decided_at      BIGINT,
    decided_by      TEXT,
    reason          TEXT
);
CREATE INDEX mpi_review_status ON mpi_review (status, probability);
CREATE INDEX mpi_review_source ON mpi_review (source);

-- Every change to the links: who, when, why.
CREATE TABLE mpi_history (
    id      INTEGER PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    source  TEXT,
    golden  TEXT,
    other   TEXT,
    reason  TEXT,
    detail  TEXT
);
CREATE INDEX mpi_history_source ON mpi_history (source);
CREATE INDEX mpi_history_golden ON mpi_history (golden);

-- Trained models; the newest active one scores.
CREATE TABLE mpi_models (
    id          INTEGER PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    model       TEXT   NOT NULL,
    note        TEXT
);
