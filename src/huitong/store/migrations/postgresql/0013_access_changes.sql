-- Huitong schema 13: what access control and the audit log keep beside the FHIR tables
-- (huitong.access.facts_cache, huitong.access.secrets, huitong.audit.service).

-- Changes to the facts a clinician's access restriction is built from (access/sql.py): who
-- is registered or seen at an organization, open referrals, Consents, sensitive labels.
-- A server keeps those facts between requests and, at each request, asks whether a change
-- it has not seen has committed since (access/facts_cache.py); so a revocation acts on the
-- very next request whichever process or tool wrote it. Rows are written by the triggers
-- below, inside the writing transaction, and only inserted (never updated), so concurrent
-- writers never wait on each other. ``scope`` is what changed: ``Organization/<id>`` or
-- ``Practitioner/<id>`` (registration, encounters, referrals and consents naming it), ``*``
-- (a Consent that may name no one: it counts for every clinician), ``label/<code>`` (a
-- resource written with that security label). ``xid`` is the writing transaction; a reader
-- compares it with the snapshot its facts were read in.
CREATE TABLE access_changes (
    scope   TEXT  NOT NULL,
    xid     xid8  NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (scope, xid)
);

CREATE FUNCTION access_note_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'idx_reference' THEN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO access_changes (scope) VALUES (OLD.target_type || '/' || OLD.target_id)
                ON CONFLICT DO NOTHING;
        ELSE
            INSERT INTO access_changes (scope) VALUES (NEW.target_type || '/' || NEW.target_id)
                ON CONFLICT DO NOTHING;
        END IF;
    ELSIF TG_TABLE_NAME = 'idx_token' THEN
        INSERT INTO access_changes (scope) VALUES ('label/' || NEW.code) ON CONFLICT DO NOTHING;
    ELSIF NOT (jsonb_path_exists(NEW.content, '$.provision.actor[*].reference.reference
                   ? (@ like_regex "^[A-Z][A-Za-z]+/[A-Za-z0-9.-]+$")')
               AND (TG_OP = 'INSERT' OR jsonb_path_exists(OLD.content,
                   '$.provision.actor[*].reference.reference
                   ? (@ like_regex "^[A-Z][A-Za-z]+/[A-Za-z0-9.-]+$")'))) THEN
        -- a Consent (this version or the one it replaces) that may name no one counts for
        -- every clinician; one naming someone is noted through its actor index rows
        INSERT INTO access_changes (scope) VALUES ('*') ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

-- The WHEN clauses are evaluated without calling the function: other rows cost nothing.
CREATE TRIGGER access_changes_reference_added AFTER INSERT ON idx_reference FOR EACH ROW
    WHEN (NEW.target_id IS NOT NULL AND NEW.target_type IS NOT NULL AND (
          (NEW.res_type = 'Patient' AND NEW.param = 'organization')
          OR (NEW.res_type = 'Encounter' AND NEW.param = 'service-provider')
          OR (NEW.res_type = 'ServiceRequest' AND NEW.param = 'performer')
          OR (NEW.res_type = 'Consent' AND NEW.param = 'actor')))
    EXECUTE FUNCTION access_note_change();
CREATE TRIGGER access_changes_reference_removed AFTER DELETE ON idx_reference FOR EACH ROW
    WHEN (OLD.target_id IS NOT NULL AND OLD.target_type IS NOT NULL AND (
          (OLD.res_type = 'Patient' AND OLD.param = 'organization')
          OR (OLD.res_type = 'Encounter' AND OLD.param = 'service-provider')
          OR (OLD.res_type = 'ServiceRequest' AND OLD.param = 'performer')
          OR (OLD.res_type = 'Consent' AND OLD.param = 'actor')))
    EXECUTE FUNCTION access_note_change();
-- a label added can hide rows; one removed only leaves a row checked that need not be
CREATE TRIGGER access_changes_label AFTER INSERT ON idx_token FOR EACH ROW
    WHEN (NEW.param = '_security' AND NEW.code IS NOT NULL)
    EXECUTE FUNCTION access_note_change();
-- every Consent write, delete included (a delete updates the row's flag and drops its
-- index rows)
CREATE TRIGGER access_changes_consent AFTER INSERT OR UPDATE ON resources FOR EACH ROW
    WHEN (NEW.res_type = 'Consent')
    EXECUTE FUNCTION access_note_change();

-- The few index rows of security labels, by label: which patients have sensitive data at
-- all is one short scan (access/sql.py reads it with a clinician's facts), instead of a
-- probe per resource type. Rows without a label cost nothing here.
CREATE INDEX idx_token_security ON idx_token (code, patient_key) WHERE param = '_security';

-- Server secrets generated on first start (huitong.access.secrets): the key of the share
-- codes' HMAC, unless HUITONG_SHARE_CODE_KEY_FILE names a file. Whoever reads this table
-- can test guesses of share codes again: protect the database like the keys it holds.
CREATE TABLE access_secrets (
    name        TEXT    PRIMARY KEY,
    secret      BYTEA   NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- Audit signing keys are rotated (huitong audit rotate-key): a retired key no longer signs
-- and its private half is erased; its public key stays, to verify the checkpoints it signed.
ALTER TABLE audit_keys ADD COLUMN retired BIGINT;
