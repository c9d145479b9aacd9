-- Huitong schema 20: the quality counters' ledger.
--
-- Every checked transaction used to add its checks to quality_counts with an upsert of a
-- hundred-odd rows (institution x month x rule). Two server workers writing the same
-- institution's data then updated the same rows, and each waited for the other's commit.
-- Now a transaction appends one row here (its deltas as a JSON array of
-- [organization, month, rule_id, category, applicable, failed]), which nothing else
-- touches; the server folds the ledger into quality_counts in the background, and reads
-- add what is not folded yet, so the counts are exact at every moment.
CREATE TABLE quality_count_deltas (
    id      INTEGER PRIMARY KEY,
    deltas  TEXT NOT NULL
);
