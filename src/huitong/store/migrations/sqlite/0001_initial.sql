-- Huitong schema 1 (SQLite). Times are microseconds since 1970-01-01T00:00Z (UTC).
-- resources: the current version of every resource (deleted ones stay, flagged, for 410 and history).
CREATE TABLE resources (
    rid          INTEGER PRIMARY KEY,
    res_type     TEXT    NOT NULL,
    res_id       TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0,
    method       TEXT    NOT NULL,
    patient_key  TEXT,
    content      TEXT    NOT NULL,
    UNIQUE (res_type, res_id)
);
CREATE INDEX resources_type_updated ON resources (res_type, last_updated);
CREATE INDEX resources_updated ON resources (last_updated);
CREATE INDEX resources_patient ON resources (patient_key);

-- resource_history: every superseded version; the current one lives in resources.
CREATE TABLE resource_history (
    rid          INTEGER NOT NULL,
    res_type     TEXT    NOT NULL,
    res_id       TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0,
    method       TEXT    NOT NULL,
    patient_key  TEXT,
    content      TEXT    NOT NULL,
    PRIMARY KEY (res_type, res_id, version)
);
CREATE INDEX resource_history_updated ON resource_history (last_updated);
CREATE INDEX resource_history_type_updated ON resource_history (res_type, last_updated);

-- Search index: one table per value type, rows of the current version only.
CREATE TABLE idx_string (
    rid INTEGER NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL,
    norm TEXT NOT NULL, exact TEXT NOT NULL, patient_key TEXT
);
CREATE INDEX idx_string_lookup ON idx_string (res_type, param, norm);
CREATE INDEX idx_string_rid ON idx_string (rid);

CREATE TABLE idx_token (
    rid INTEGER NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL,
    system TEXT, code TEXT, text TEXT, patient_key TEXT
);
CREATE INDEX idx_token_lookup ON idx_token (res_type, param, code, system);
CREATE INDEX idx_token_rid ON idx_token (rid);

CREATE TABLE idx_reference (
    rid INTEGER NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL,
    target_type TEXT, target_id TEXT, url TEXT, patient_key TEXT
);
CREATE INDEX idx_reference_lookup ON idx_reference (res_type, param, target_id, target_type);
CREATE INDEX idx_reference_target ON idx_reference (target_id, target_type);
CREATE INDEX idx_reference_url ON idx_reference (url) WHERE url IS NOT NULL;
CREATE INDEX idx_reference_rid ON idx_reference (rid);

CREATE TABLE idx_date (
    rid INTEGER NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL,
    lo INTEGER NOT NULL, hi INTEGER NOT NULL, patient_key TEXT
);
CREATE INDEX idx_date_lookup ON idx_date (res_type, param, lo, hi);
CREATE INDEX idx_date_rid ON idx_date (rid);

CREATE TABLE idx_number (
    rid INTEGER NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL,
    value REAL NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL, patient_key TEXT
);
CREATE INDEX idx_number_lookup ON idx_number (res_type, param, lo, hi);
CREATE INDEX idx_number_rid ON idx_number (rid);

CREATE TABLE idx_quantity (
    rid INTEGER NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL,
    system TEXT, code TEXT, unit TEXT,
    value REAL NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL, patient_key TEXT
);
CREATE INDEX idx_quantity_lookup ON idx_quantity (res_type, param, code, lo, hi);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid);

CREATE TABLE idx_uri (
    rid INTEGER NOT NULL, res_type TEXT NOT NULL, param TEXT NOT NULL, grp INTEGER NOT NULL,
    value TEXT NOT NULL, patient_key TEXT
);
CREATE INDEX idx_uri_lookup ON idx_uri (res_type, param, value);
CREATE INDEX idx_uri_rid ON idx_uri (rid);
