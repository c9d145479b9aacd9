-- Huitong schema 8: share codes and break-glass sessions (huitong.access.share_codes,
-- huitong.access.break_glass). Consents themselves are FHIR Consent resources.
-- Times are microseconds since 1970-01-01T00:00Z (UTC); JSON columns hold UTF-8 JSON text.

-- One-time share codes a patient issues. The code is stored only as its SHA-256 digest;
-- ``id`` names it in lists and the audit log. Once redeemed, the row is the grant:
-- ``redeemed_by`` (the clinician's user id) may read the patient until ``grant_until``.
CREATE TABLE access_share_codes (
    id              TEXT    PRIMARY KEY,
    code_hash       TEXT    NOT NULL UNIQUE,
    patient_id      TEXT    NOT NULL,
    issued_by       TEXT    NOT NULL,
    resource_types  TEXT    NOT NULL DEFAULT '[]',
    labels          TEXT    NOT NULL DEFAULT '[]',
    access_us       BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    redeemed_at     BIGINT,
    redeemed_by     TEXT,
    redeemed_org    TEXT,
    grant_until     BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX access_share_codes_grantee ON access_share_codes (redeemed_by, grant_until);
CREATE INDEX access_share_codes_patient ON access_share_codes (patient_id, created_at);

-- Emergency (break-the-glass) access one clinician opened to one patient, with the reason.
CREATE TABLE access_break_glass (
    id              TEXT    PRIMARY KEY,
    user_id         TEXT    NOT NULL,
    practitioner_id TEXT,
    organization_id TEXT,
    patient_id      TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    started_at      BIGINT  NOT NULL,
    until           BIGINT  NOT NULL,
    closed_at       BIGINT
);
CREATE INDEX access_break_glass_user ON access_break_glass (user_id, until);
CREATE INDEX access_break_glass_patient ON access_break_glass (patient_id, started_at);
