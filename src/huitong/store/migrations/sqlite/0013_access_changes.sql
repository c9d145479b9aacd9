-- Huitong schema 13: what access control and the audit log keep beside the FHIR tables
-- (huitong.access.secrets, huitong.audit.service).
-- PostgreSQL also gets ``access_changes`` and its triggers: its servers keep a clinician's
-- access facts between requests (access/facts_cache.py). SQLite restrictions are compiled
-- into every statement and read nothing ahead, so there is nothing to keep fresh here.

-- Server secrets generated on first start (huitong.access.secrets): the key of the share
-- codes' HMAC, unless HUITONG_SHARE_CODE_KEY_FILE names a file. Whoever reads this table
-- can test guesses of share codes again: protect the database like the keys it holds.
CREATE TABLE access_secrets (
    name        TEXT    PRIMARY KEY,
    secret      BLOB    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- Audit signing keys are rotated (huitong audit rotate-key): a retired key no longer signs
-- and its private half is erased; its public key stays, to verify the checkpoints it signed.
ALTER TABLE audit_keys ADD COLUMN retired BIGINT;
