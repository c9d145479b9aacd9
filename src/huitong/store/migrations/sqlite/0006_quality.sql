-- Huitong schema 6: data quality (findings, check counters, the region's rule configuration).
-- Times are microseconds since 1970-01-01T00:00Z (UTC); months are "YYYY-MM" on the region's
-- clock. Organizations are "Organization/<id>" references, or "unknown".

-- One row per failed check of one resource version: what is wrong, in both languages.
CREATE TABLE quality_findings (
    id            INTEGER PRIMARY KEY,
    resource      TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    rule_id       TEXT    NOT NULL,
    category      TEXT    NOT NULL,
    severity      TEXT    NOT NULL,
    expression    TEXT,
    message_en    TEXT    NOT NULL,
    message_zh    TEXT    NOT NULL,
    source        TEXT,
    organization  TEXT    NOT NULL,
    month         TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX quality_findings_org_month ON quality_findings (organization, month);
CREATE INDEX quality_findings_rule ON quality_findings (rule_id, month);
CREATE INDEX quality_findings_resource ON quality_findings (resource, version);

-- Checks per institution x month x rule: how many applied and how many failed. Scores are
-- 1 - failed / applicable, summed over any grouping.
CREATE TABLE quality_counts (
    organization  TEXT   NOT NULL,
    month         TEXT   NOT NULL,
    rule_id       TEXT   NOT NULL,
    category      TEXT   NOT NULL,
    applicable    BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    PRIMARY KEY (organization, month, rule_id)
);
CREATE INDEX quality_counts_month ON quality_counts (month);

-- Every version of the region's rule configuration; the newest row is in force.
CREATE TABLE quality_config (
    id        INTEGER PRIMARY KEY,
    document  TEXT   NOT NULL,
    saved_at  BIGINT NOT NULL,
    saved_by  TEXT   NOT NULL,
    note      TEXT
);
