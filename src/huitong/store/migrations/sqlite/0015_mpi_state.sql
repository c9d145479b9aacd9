-- Huitong schema 15: what the master patient index remembers about itself.
-- `key_scheme` records which version of the blocking-key functions wrote every row of
-- mpi_keys. While it matches the running code, a batch re-link blocks straight from the
-- stored keys instead of decoding every record to recompute them (at a million records
-- that recomputation was minutes); after an upgrade that changes the keys, the next re-link
-- recomputes and rewrites them and records the new version.

CREATE TABLE mpi_state (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
