-- Huitong schema 17 (PostgreSQL): the idx_*_rid indexes carry res_type.
--
-- A correlated EXISTS of a _has or chained search names the type, so that PostgreSQL can
-- weigh reading the parameter's lookup index instead. Probing by rid then had to read the
-- table row for res_type, which made one probe look dearer than a scan of a whole value
-- range; with the candidates underestimated (a name prefix taken to match 1 row that matched
-- 120 at 10x data) the planner repeated that range scan per candidate (230 ms where the
-- probes take 5). With res_type in the index, probes are index-only and cost what they cost.
-- (SQLite does not choose plans this way; its indexes stay as in schema 2.)

DROP INDEX idx_string_rid;
CREATE INDEX idx_string_rid ON idx_string (rid, param, norm) INCLUDE (res_type);
DROP INDEX idx_token_rid;
CREATE INDEX idx_token_rid ON idx_token (rid, param, code, system) INCLUDE (res_type);
DROP INDEX idx_reference_rid;
CREATE INDEX idx_reference_rid ON idx_reference (rid, param, target_type, target_id) INCLUDE (res_type);
DROP INDEX idx_date_rid;
CREATE INDEX idx_date_rid ON idx_date (rid, param, lo, hi) INCLUDE (res_type);
