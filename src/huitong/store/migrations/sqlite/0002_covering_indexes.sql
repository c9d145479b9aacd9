-- Huitong schema 2: covering search indexes.
--
-- Every search condition is either "which rids have this value" (lookup, driven by the value)
-- or "does this rid have this value" (EXISTS, driven by the rid). Schema 1 indexed both ways
-- but made the database visit the table row for every candidate; these indexes hold every
-- column the search SQL reads, so both directions are answered from the index alone
-- (index-only scans), which is what keeps the p95 of selective searches flat as data grows.

DROP INDEX idx_string_lookup;
CREATE INDEX idx_string_lookup ON idx_string (res_type, param, norm, rid);
DROP INDEX idx_string_rid;
CREATE INDEX idx_string_rid ON idx_string (rid, param, norm);

DROP INDEX idx_token_lookup;
CREATE INDEX idx_token_lookup ON idx_token (res_type, param, code, system, rid);
DROP INDEX idx_token_rid;
CREATE INDEX idx_token_rid ON idx_token (rid, param, code, system);

DROP INDEX idx_reference_lookup;
CREATE INDEX idx_reference_lookup ON idx_reference (res_type, param, target_id, target_type, rid);
DROP INDEX idx_reference_rid;
CREATE INDEX idx_reference_rid ON idx_reference (rid, param, target_type, target_id);

DROP INDEX idx_date_lookup;
CREATE INDEX idx_date_lookup ON idx_date (res_type, param, lo, hi, rid);
DROP INDEX idx_date_rid;
CREATE INDEX idx_date_rid ON idx_date (rid, param, lo, hi);
