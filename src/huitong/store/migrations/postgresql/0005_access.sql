-- Huitong schema 5: the authorization server's own tables (huitong.access).
-- Times are microseconds since 1970-01-01T00:00Z (UTC); JSON columns hold UTF-8 JSON text.
-- Secrets are never stored in the clear: passwords as Argon2id PHC strings, client secrets,
-- refresh tokens, authorization codes and sign-in tickets as SHA-256 hex digests.

-- People who sign in. patient_ids: JSON array of the Patient ids linked to the person.
CREATE TABLE auth_users (
    id              TEXT    PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE,
    display_name    TEXT    NOT NULL DEFAULT '',
    role            TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    totp_secret     TEXT,
    totp_last_step  BIGINT,
    organization_id TEXT,
    practitioner_id TEXT,
    patient_ids     TEXT    NOT NULL DEFAULT '[]',
    disabled        INTEGER NOT NULL DEFAULT 0,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until    BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

-- Registered applications: public (PKCE), confidential (secret) or backend (JWKS).
CREATE TABLE auth_clients (
    client_id       TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL DEFAULT '',
    kind            TEXT    NOT NULL,
    secret_hash     TEXT,
    redirect_uris   TEXT    NOT NULL DEFAULT '[]',
    scopes          TEXT    NOT NULL DEFAULT '',
    jwks            TEXT,
    organization_id TEXT,
    can_introspect  INTEGER NOT NULL DEFAULT 0,
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT  NOT NULL
);

-- The server's token-signing keys: one 'current', the 'previous' still verifies.
CREATE TABLE auth_signing_keys (
    kid         TEXT   PRIMARY KEY,
    alg         TEXT   NOT NULL,
    private_jwk TEXT   NOT NULL,
    public_jwk  TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    rotated_at  BIGINT
);
CREATE UNIQUE INDEX auth_signing_keys_one_current ON auth_signing_keys (status)
    WHERE status = 'current';

-- Authorization codes (single use: used_at set on the first redemption).
CREATE TABLE auth_codes (
    code_hash       TEXT   PRIMARY KEY,
    client_id       TEXT   NOT NULL,
    user_id         TEXT   NOT NULL,
    redirect_uri    TEXT   NOT NULL,
    scope           TEXT   NOT NULL,
    code_challenge  TEXT   NOT NULL,
    challenge_method TEXT  NOT NULL,
    nonce           TEXT,
    launch_patient  TEXT,
    auth_time       BIGINT NOT NULL,
    amr             TEXT   NOT NULL DEFAULT '[]',
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    family_id       TEXT
);
CREATE INDEX auth_codes_expiry ON auth_codes (expires_at);

-- Issued tokens. Access tokens are JWTs found by jti; refresh tokens by their hash. A
-- family is every token descended from one grant: reuse of a rotated refresh token revokes it.
CREATE TABLE auth_tokens (
    jti             TEXT   PRIMARY KEY,
    kind            TEXT   NOT NULL,
    token_hash      TEXT,
    family_id       TEXT   NOT NULL,
    client_id       TEXT   NOT NULL,
    user_id         TEXT,
    scope           TEXT   NOT NULL,
    launch_patient  TEXT,
    issued_at       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    rotated_at      BIGINT,
    revoked_at      BIGINT,
    revoked_reason  TEXT
);
CREATE UNIQUE INDEX auth_tokens_hash ON auth_tokens (token_hash);
CREATE INDEX auth_tokens_family ON auth_tokens (family_id);
CREATE INDEX auth_tokens_expiry ON auth_tokens (expires_at);

-- jti of client assertions already accepted, kept until the assertion expires (replay).
CREATE TABLE auth_assertion_jti (
    client_id   TEXT   NOT NULL,
    jti         TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX auth_assertion_jti_expiry ON auth_assertion_jti (expires_at);

-- The second sign-in step: a password already checked, waiting for the TOTP code.
CREATE TABLE auth_login_tickets (
    ticket_hash TEXT   PRIMARY KEY,
    user_id     TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0
);
