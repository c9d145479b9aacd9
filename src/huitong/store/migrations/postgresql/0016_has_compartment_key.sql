-- Huitong schema 16: searches through the compartment key.
--
-- `Patient?_has:Observation:patient:code=x` asks, per patient, "does a matching source refer
-- to it?". Read from the sources, that is one reference probe per matching source; checked
-- per patient, one probe per resource that refers to the patient. `Observation?patient=p&
-- code=x` likewise probed every Observation of the patient for the code. Every index row
-- carries `patient_key`, the Patient compartment of its resource, and a resource almost
-- always refers to the patient it is filed under. So (search_sql, "The compartment key"):
--
-- idx_token_lookup has patient_key right after the code: "the rows with code x filed under
-- this patient" are one seek whether or not the search names a system, and the compartments
-- of the sources with code x come from the index in order (a code's systems, almost always
-- one, are checked in the index after it);
--
-- idx_reference_cross holds the reference rows that point at a Patient other than their own
-- resource's compartment (few: a golden record's links, a Group's members): the matches
-- the first index cannot see are found there, so the two together stay exact;
--
-- resources_type_rid: the candidates of one type in rid order, the order of every unsorted
-- page, so a page led by a common _has checks candidates until the page is full (without
-- it PostgreSQL could only walk the primary key through every other type's rows, and chose
-- to check every candidate of the type). SQLite walks its rowid, the rid, and needs none.

DROP INDEX idx_token_lookup;
CREATE INDEX idx_token_lookup ON idx_token (res_type, param, code, patient_key, system) INCLUDE (rid);

CREATE INDEX idx_reference_cross ON idx_reference (res_type, param, target_id) INCLUDE (rid)
    WHERE target_type = 'Patient' AND (patient_key IS NULL OR patient_key <> target_id);

CREATE INDEX resources_type_rid ON resources (res_type, rid);
