"""The translation service's unmapped-code queue on PostgreSQL: written by a deferred
statement that travels with the store's last flush, and committed with the resources."""

from __future__ import annotations

from typing import Any

from huitong.store import Repository
from huitong.terminology.write_path import TranslationService


def test_on_postgresql_the_unmapped_queue_travels_with_the_last_flush(
    pg_repo: Repository,
) -> None:
    sent_alone: list[str] = []
    deferred: list[str] = []

    def spy(tx: Any) -> None:
        # Registered before the translation service: its commit hook runs first, so every
        # statement sent from then on is seen going alone or deferred.
        execute, execute_later = tx.execute, tx.execute_later

        def alone(sql: str, params: Any = ()) -> Any:
            sent_alone.append(sql)
            return execute(sql, params)

        def later(sql: str, params: Any = ()) -> None:
            deferred.append(sql)
            execute_later(sql, params)

        tx.execute, tx.execute_later = alone, later

    pg_repo.add_commit_hook("spy", spy)
    TranslationService(pg_repo, clock=pg_repo.clock, normalise_units=False).install()
    with pg_repo.transaction() as tx:
        tx.create({"resourceType": "Patient", "id": "p1", "gender": "female"}, id="p1")
        tx.create({
            "resourceType": "Condition", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "urn:huitong:org:hosp-a:dx", "code": "L-17",
                                 "display": "本地诊断"}]},
        })  # fmt: skip
    assert not [sql for sql in sent_alone if "terminology_unmapped" in sql]
    assert sum("terminology_unmapped" in sql for sql in deferred) == 1
    rows = pg_repo.query("SELECT system, code, res_type, display FROM terminology_unmapped")
    assert rows == [("urn:huitong:org:hosp-a:dx", "L-17", "Condition", "本地诊断")]
