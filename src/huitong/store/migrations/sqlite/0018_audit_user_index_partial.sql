-- Huitong schema 18: the audit log's by-user index holds only entries that have a user.
--
-- Reads with authentication off, system clients and anonymous requests record no user, and
-- every entry paid an insert into this index all the same (the audited read by id is one
-- entry per request). Its only query, an auditor's "entries by this user", names a user,
-- and `actor_user = ?` implies the index's condition on both engines.
DROP INDEX audit_entries_user;
CREATE INDEX audit_entries_user ON audit_entries (actor_user, recorded)
    WHERE actor_user IS NOT NULL;
