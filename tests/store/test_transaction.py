"""A transaction's own rows, deferred statements and searches run together, on both engines.

On PostgreSQL these save round trips (``BaseTransaction``): statements nobody reads travel
with the next one, the rows a transaction wrote or locked are answered from memory, and a
bundle's conditional searches share one pipeline. What is checked here is that none of it
changes an answer: every read, search and failure is the one the plain path gives.
"""

from __future__ import annotations

import pytest

from huitong.fhir.errors import FhirError
from huitong.fhir.search.parse import parse_search
from huitong.store import Repository


def _patient(pid: str, value: str, **extra: object) -> dict[str, object]:
    return {"resourceType": "Patient", "id": pid,
            "identifier": [{"system": "urn:test", "value": value}], **extra}


def _history_rows(repo: Repository) -> list[tuple[object, ...]]:
    return repo.query("SELECT action, source FROM mpi_history ORDER BY id")


def test_a_deferred_statement_runs_before_the_next_statement(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.execute_later(
            "INSERT INTO mpi_history (at, actor, action, source) VALUES (?, ?, ?, ?)",
            (1, "test", "first", "Patient/a"))
        tx.execute_later(
            "INSERT INTO mpi_history (at, actor, action, source) VALUES (?, ?, ?, ?)",
            (2, "test", "second", "Patient/b"))
        # the deferred inserts are in place for the next statement, in order
        seen = tx.execute("SELECT action FROM mpi_history ORDER BY id")
        assert seen == [("first",), ("second",)]
        tx.execute_later(
            "INSERT INTO mpi_history (at, actor, action, source) VALUES (?, ?, ?, ?)",
            (3, "test", "at-commit", "Patient/c"))
        # nothing else is sent after this one: the commit itself must carry it
    assert _history_rows(repo) == [
        ("first", "Patient/a"), ("second", "Patient/b"), ("at-commit", "Patient/c")]


def test_a_failing_deferred_statement_fails_the_whole_transaction(repo: Repository) -> None:
    repo.query("SELECT 1")
    with pytest.raises(Exception), repo.transaction() as tx:  # noqa: B017 - engine's own error
        tx.create(_patient("p1", "1"), id="p1")
        tx.execute_later("INSERT INTO mpi_records (source, record) VALUES (?, ?)",
                         ("Patient/p1", "{}"))
        tx.execute_later("INSERT INTO mpi_records (source, record) VALUES (?, ?)",
                         ("Patient/p1", "{}"))  # duplicate primary key
        tx.create(_patient("p2", "2"), id="p2")
    assert repo.query("SELECT COUNT(*) FROM mpi_records") == [(0,)]
    with pytest.raises(FhirError):
        repo.read("Patient", "p1")


def test_component_sql_is_checked_when_deferred_too(repo: Repository) -> None:
    with pytest.raises(ValueError), repo.transaction() as tx:
        tx.execute_later("DELETE FROM resources WHERE 1 = 1")


def test_reads_inside_a_transaction_see_its_own_writes(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.create(_patient("old", "o"), id="old")
    with repo.transaction() as tx:
        created = tx.create(_patient("new", "n"), id="new").stored
        assert tx.read("Patient", "new").version_id == created.version_id == 1
        tx.update(_patient("new", "n", gender="female"))
        assert tx.read("Patient", "new").resource["gender"] == "female"
        assert tx.read("Patient", "new").version_id == 2
        tx.update(_patient("old", "o", gender="male"))
        tx.update(_patient("old", "o", gender="other"))
        current = tx.read("Patient", "old")
        assert (current.version_id, current.resource["gender"]) == (3, "other")
        gone = tx.delete("Patient", "old")
        assert gone is not None and tx.read("Patient", "old").deleted
        # a search in the same transaction sees the replaced rows and their index rows
        page = tx.search(parse_search("Patient", [("gender", "female")]))
        assert [m.id for m in page.matches] == ["new"]
        assert tx.search(parse_search("Patient", [("gender", "other")])).matches == []
    assert repo.read("Patient", "new").version_id == 2
    history = repo.history("Patient", "old")
    assert [e.version_id for e in history.entries] == [4, 3, 2, 1]
    assert history.entries[0].deleted


def test_locked_rows_and_absent_ones(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.create(_patient("a", "a"), id="a")
        tx.create(_patient("b", "b"), id="b")
    with repo.transaction() as tx:
        tx.lock_current([("Patient", "a"), ("Patient", "b"), ("Patient", "c")])
        assert tx.read("Patient", "c") is None
        assert tx.read("Patient", "a").version_id == 1
        tx.update(_patient("a", "a", active=True))
        outcome = tx.update(_patient("c", "c"))  # update-as-create of the absent one
        assert outcome.created
        assert tx.read("Patient", "c").version_id == 1
        unchanged = tx.update(_patient("b", "b"))
        assert not unchanged.changed and unchanged.stored.version_id == 1
    assert repo.read("Patient", "a").resource["active"] is True
    assert repo.read("Patient", "c").version_id == 1
    assert repo.read("Patient", "b").version_id == 1


def test_reads_after_a_prefetch(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.create(_patient("a", "a"), id="a")
        tx.create(_patient("b", "b"), id="b")
    with repo.transaction() as tx:
        tx.prefetch([("Patient", "a"), ("Patient", "b"), ("Patient", "nobody")])
        assert tx.read("Patient", "a").resource["identifier"][0]["value"] == "a"
        assert tx.read("Patient", "nobody") is None
        tx.update(_patient("b", "b", gender="male"))  # its own write wins over the prefetch
        assert tx.read("Patient", "b").resource["gender"] == "male"
        assert tx.read("Patient", "b").version_id == 2
        tx.delete("Patient", "a")
        assert tx.read("Patient", "a").deleted
    assert repo.read("Patient", "b").version_id == 2


def test_a_created_row_can_be_replaced_in_the_same_transaction(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.create(_patient("x", "1"), id="x")
        tx.update(_patient("x", "2"))
        found = tx.search(parse_search("Patient", [("identifier", "urn:test|2")]))
        assert [m.id for m in found.matches] == ["x"]
        assert tx.search(parse_search("Patient", [("identifier", "urn:test|1")])).matches == []
    assert repo.read("Patient", "x").version_id == 2
    assert repo.search(parse_search("Patient", [("identifier", "urn:test|1")])).matches == []


@pytest.mark.parametrize("params", [
    [("identifier", "urn:test|1")],
    [("identifier", "urn:test|9")],
    [("gender", "female"), ("_sort", "-_id")],
    [("gender", "female"), ("_total", "accurate")],
    [("_id", "p1,p2,p3"), ("_count", "2")],
])
def test_search_many_answers_as_search_does(repo: Repository, params: list) -> None:
    with repo.transaction() as tx:
        for n in range(1, 5):
            tx.create(_patient(f"p{n}", str(n), gender="female" if n % 2 else "male"),
                      id=f"p{n}")
    queries = [parse_search("Patient", params),
               parse_search("Patient", [("identifier", "urn:test|2")])]
    for q in queries:
        if q.total is None:
            q.total = "none"
    with repo.transaction() as tx:
        tx.create(_patient("p5", "5", gender="female"), id="p5")  # buffered: seen by both ways
        together = tx.search_many(queries)
        alone = [tx.search(q) for q in queries]
    for a, b in zip(together, alone, strict=True):
        assert [m.id for m in a.matches] == [m.id for m in b.matches]
        assert (a.total, a.has_next) == (b.total, b.has_next)


def _index_rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    import psycopg

    from huitong.store._base import INDEX_TABLES

    out = {}
    with psycopg.connect(url) as conn:
        for name, cols in INDEX_TABLES.items():
            out[name] = sorted(
                (tuple(str(v) for v in row) for row in conn.execute(
                    f"SELECT r.res_id, i.res_type, i.patient_key, i.param, i.grp, "
                    f"{', '.join('i.' + c for c in cols)} FROM idx_{name} i "
                    "JOIN resources r ON r.rid = i.rid")),
            )
        out["resources"] = sorted(
            (str(r[0]), str(r[1])) for r in conn.execute(
                "SELECT res_id, content - 'meta' FROM resources"))  # meta: stamped per run
    return out


def test_postgres_rows_sent_as_json_equal_the_copied_ones(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush of up to 20,000 rows sends each table's rows as one JSON parameter; a larger
    one uses COPY. Both must store exactly the same rows: open quantity bounds (infinite),
    nulls, booleans, Chinese text, the resource JSON itself."""
    import psycopg

    from huitong.store import open_repository, postgres

    resources = [
        _patient("p1", "1", name=[{"text": "张三", "family": "张"}], active=False,
                 birthDate="1970-03-01", meta={"profile": ["http://example.org/p"]}),
        {"resourceType": "Observation", "id": "o1", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
         "subject": {"reference": "Patient/p1"},
         "valueQuantity": {"value": 5, "comparator": "<", "unit": "mmol/L",
                           "system": "http://unitsofmeasure.org", "code": "mmol/L"},
         "referenceRange": [{"low": {"value": 3.9}}],
         "effectiveDateTime": "2024-05-01T08:00:00+08:00"},
        {"resourceType": "RiskAssessment", "id": "r1", "status": "final",
         "subject": {"reference": "Patient/p1"},
         "prediction": [{"probabilityRange": {"low": {"value": 0.2}}}]},
        # numbers whose text a JSON parameter must carry exactly (exponents, the shortest
        # repr of a binary fraction, a large integer)
        {"resourceType": "Observation", "id": "o2", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
         "subject": {"reference": "Patient/p1"},
         "valueQuantity": {"value": 1.5e-07, "unit": "mmol/L"},
         "referenceRange": [{"low": {"value": 0.30000000000000004},
                             "high": {"value": 1e300}}]},
        {"resourceType": "RiskAssessment", "id": "r2", "status": "final",
         "subject": {"reference": "Patient/p1"},
         "prediction": [{"probabilityDecimal": 0.125, "relativeRisk": 123456789012345}]},
    ]
    rows = {}
    for mode in ("json", "copy"):
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("TRUNCATE resources, resource_history, idx_string, idx_token, "
                         "idx_reference, idx_date, idx_number, idx_quantity, idx_uri")
        monkeypatch.setattr(postgres, "_PIPELINE_ROWS", 20000 if mode == "json" else 0)
        repo = open_repository(postgres_url)
        try:
            with repo.transaction() as tx:
                for r in resources:
                    tx.update(r)
        finally:
            repo.close()
        rows[mode] = _index_rows(postgres_url)
    assert rows["json"] == rows["copy"]
    assert any("-inf" in row or "inf" in row for row in rows["json"]["quantity"])
    assert any("张三" in " ".join(row) for row in rows["json"]["string"])
    assert ("p1", "Patient", "p1", "_profile", "0", "http://example.org/p") in rows["json"]["uri"]


def test_many_identifier_searches_together_answer_each_alone(repo: Repository) -> None:
    """A feed's conditional creates (identifier=system|code, many at once) are answered in
    one statement on PostgreSQL: each must get exactly its own matches."""
    with repo.transaction() as tx:
        tx.create(_patient("a", "1"), id="a")
        tx.create({"resourceType": "Patient", "id": "twice", "identifier": [
            {"system": "urn:test", "value": "2"}, {"system": "urn:test", "value": "2"}]},
            id="twice")
        tx.create({"resourceType": "Patient", "id": "other",
                   "identifier": [{"system": "urn:other", "value": "1"}]}, id="other")
        tx.create(_patient("dup1", "3"), id="dup1")
        tx.create(_patient("dup2", "3"), id="dup2")
        tx.create(_patient("gone", "4"), id="gone")
        tx.create({"resourceType": "Device", "id": "d1",
                   "identifier": [{"system": "urn:test", "value": "1"}]}, id="d1")
    with repo.transaction() as tx:
        tx.delete("Patient", "gone")
    values = ["urn:test|1", "urn:test|2", "urn:other|1", "urn:test|3", "urn:test|4",
              "urn:test|5", "urn:test|1"]
    queries = [parse_search("Patient", [("identifier", v)]) for v in values]
    queries.append(parse_search("Device", [("identifier", "urn:test|1")]))
    for q in queries:
        q.count, q.total = 2, "none"
    with repo.transaction() as tx:
        together = tx.search_many(queries)
        alone = [tx.search(q) for q in queries]
    got = [[m.id for m in page.matches] for page in together]
    assert got == [[m.id for m in page.matches] for page in alone]
    assert got == [["a"], ["twice"], ["other"], ["dup1", "dup2"], [], [], ["a"], ["d1"]]


def test_bytes_a_transform_serialised_are_stored_only_for_that_content(
    repo: Repository,
) -> None:
    """A transform that serialises the resource (``tx.serialised``) and returns it
    unchanged leaves its bytes to the store; one that returns a new resource gets the new
    one stored, never the bytes of the one it replaced."""
    seen: list[bytes] = []

    def transform(tx, content):  # type: ignore[no-untyped-def]
        seen.append(tx.serialised(content))
        if content.get("gender") == "unknown":
            return {**content, "gender": "other"}
        return content

    repo.add_write_transform("test-serialise", ["Patient"], transform)
    with repo.transaction() as tx:
        kept = tx.create(_patient("k", "1", gender="male"), id="k").stored
        changed = tx.create(_patient("c", "2", gender="unknown"), id="c").stored
    assert kept.json == seen[0]
    assert changed.resource["gender"] == "other"
    assert repo.read("Patient", "c").resource["gender"] == "other"
    assert repo.read("Patient", "k").resource["gender"] == "male"


def test_lookup_query_answers_as_query_and_keeps_to_component_tables(repo: Repository) -> None:
    """``lookup_query`` (planned once on PostgreSQL: a request's authentication statement)
    gives what ``query`` gives, run after run, and refuses the FHIR tables as ``query`` does."""
    with repo.transaction() as tx:
        for n in range(3):
            tx.execute("INSERT INTO mpi_history (at, actor, action, source) VALUES (?, ?, ?, ?)",
                       (n, "test", f"a{n}", f"Patient/{n}"))
    sql = "SELECT action FROM mpi_history WHERE source = ? OR at = ? ORDER BY id"
    for n in range(8):  # past psycopg's prepare threshold: the prepared, generic plan too
        params = (f"Patient/{n % 3}", 99)
        assert repo.lookup_query(sql, params) == repo.query(sql, params) == [(f"a{n % 3}",)]
    with pytest.raises(ValueError):
        repo.lookup_query("SELECT COUNT(*) FROM resources")


def _count_allocations(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the row-id blocks the transaction draws (one round trip each on
    PostgreSQL)."""
    sizes: list[int] = []
    ops = repo.ops  # type: ignore[attr-defined]
    allocate = ops.allocate_rids

    def counted(cur: object, n: int, after: int) -> list[int]:
        sizes.append(n)
        return allocate(cur, n, after)

    monkeypatch.setattr(ops, "allocate_rids", counted)
    return sizes


@pytest.mark.parametrize("announced", [False, True])
def test_announced_writes_draw_their_row_ids_in_one_block(
    repo: Repository, monkeypatch: pytest.MonkeyPatch, announced: bool
) -> None:
    sizes = _count_allocations(repo, monkeypatch)
    with repo.transaction() as tx:
        if announced:
            tx.expect_writes(300)
        for i in range(300):
            tx.create(_patient(f"b{i}", str(i)), id=f"b{i}")
    # Unannounced, blocks grow 16, 32, 64, 128, 256; announced, one block of 300.
    assert sizes == ([300] if announced else [16, 32, 64, 128, 256])
    # every row stored under an id of its own (a reused rid would have failed the insert)
    for i in (0, 15, 16, 255, 299):
        assert repo.read("Patient", f"b{i}").resource["identifier"][0]["value"] == str(i)


def test_a_low_guess_only_costs_another_block(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _count_allocations(repo, monkeypatch)
    with repo.transaction() as tx:
        tx.expect_writes(20)
        for i in range(40):
            tx.create(_patient(f"c{i}", str(i)), id=f"c{i}")
    assert sizes == [20, 40]
    for i in (0, 19, 20, 39):
        assert repo.read("Patient", f"c{i}").resource["identifier"][0]["value"] == str(i)
