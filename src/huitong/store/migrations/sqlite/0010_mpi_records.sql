-- Huitong schema 10: the master patient index at scale.
-- mpi_records keeps each source record's normalised identity (huitong.mpi.codec JSON), so
-- $match and the write hook fetch and score candidates with one query instead of reading
-- and re-normalising each candidate Patient; a batch re-link starts from these rows.
-- Rows written before this migration are filled in by `huitong mpi relink`; until then
-- the service falls back to the Patient itself.

CREATE TABLE mpi_records (
    source  TEXT PRIMARY KEY,
    record  TEXT NOT NULL
);

-- Blocking lookups read (key, source) only: a covering index answers them from the index
-- alone, and the per-key block-size cap stops after cap + 1 entries.
CREATE INDEX mpi_keys_key_source ON mpi_keys (key, source);
DROP INDEX mpi_keys_key;
