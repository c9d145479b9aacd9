"""Batch re-link (``huitong mpi relink``) on SQLite and PostgreSQL: idempotence, dry run,
operator decisions surviving (certainly-not, manual links), golden records rebuilt, records
written while the index was off picked up, and the one-query candidate fetch with its
block-size cap."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from huitong.cli import main
from huitong.mpi.blocking import KEY_SCHEME, blocking_keys, candidate_pairs
from huitong.mpi.record import record_from_patient
from huitong.mpi.relink import block_pairs, components, relink
from huitong.mpi.resident_id import make_resident_id
from huitong.mpi.service import IdentityService, fetch_candidates, is_golden
from huitong.mpi.synth import generate_people, noisy_patients
from huitong.store import Repository, open_repository

RID = "urn:oid:2.16.156.10011.1.3"
ZHANG = make_resident_id("110105", date(1970, 3, 5), 13)
TABLES = ("mpi_sources", "mpi_keys", "mpi_records", "mpi_review", "mpi_history",
          "mpi_certainly_not")  # fmt: skip


def service_for(repo: Repository, prefix: str = "g") -> IdentityService:
    ids = (f"{prefix}{i}" for i in itertools.count())
    return IdentityService(repo, clock=repo.clock, new_id=lambda: next(ids))


@pytest.fixture
def mpi(repo: Repository) -> IdentityService:
    service = service_for(repo)
    service.install()
    return service


def patient(pid: str, org: str, *, name: str = "张伟", birth: str = "1970-03-05",
            rid: str | None = None, phone: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "resourceType": "Patient", "id": pid, "gender": "male", "birthDate": birth,
        "name": [{"text": name, "family": name[0], "given": [name[1:]]}],
        "managingOrganization": {"reference": f"Organization/{org}"},
        "identifier": [{"system": f"urn:huitong:org:{org}:mrn", "value": pid}],
    }  # fmt: skip
    if rid:
        p["identifier"].append({"system": RID, "value": rid})
    if phone:
        p["telecom"] = [{"system": "phone", "value": phone}]
    return p


def put(repo: Repository, *patients: dict[str, Any]) -> None:
    with repo.transaction() as tx:
        for p in patients:
            tx.update(p)


def population(repo: Repository, people: int = 40, seed: int = 5) -> None:
    sources = noisy_patients(generate_people(people, seed=seed), seed=seed)
    with repo.transaction() as tx:
        for n, s in enumerate(sources):
            p = {**s.patient, "id": f"s{n:03d}",
                 "managingOrganization": {"reference": f"Organization/{s.org}"}}  # fmt: skip
            try:  # a typo'd birth date is not a FHIR date; the sender would drop it
                date.fromisoformat(p.get("birthDate", ""))
            except ValueError:
                p.pop("birthDate")
            tx.update(p)


def snapshot(repo: Repository) -> dict[str, Any]:
    out: dict[str, Any] = {t: sorted(map(repr, repo.query(f"SELECT * FROM {t}"))) for t in TABLES}
    out["patients"] = repo.counts_by_type().get("Patient", 0)
    return out


def test_relink_is_idempotent_and_a_dry_run_writes_nothing(repo, mpi):
    population(repo)
    before = snapshot(repo)
    planned = relink(mpi, dry_run=True)
    assert snapshot(repo) == before
    assert planned.records == int(repo.query("SELECT COUNT(*) FROM mpi_records")[0][0])
    assert planned.pairs > 0
    first = relink(mpi)
    # what the dry run announced is what the run did
    assert (first.links_made, first.links_removed, first.queued, first.superseded) == (
        planned.links_made, planned.links_removed, planned.queued, planned.superseded)
    after_first = snapshot(repo)
    second = relink(mpi)
    assert not second.changed, second.to_json()
    assert snapshot(repo) == after_first
    assert "Nothing to change. / 无需变更。" in second.lines()


def test_certainly_not_survives_relink(repo, mpi):
    put(repo, patient("a1", "county", rid=ZHANG), patient("b1", "clinic", rid=ZHANG))
    old = mpi.golden_of("a1")
    assert mpi.golden_of("b1") == old
    new = mpi.unlink("Patient/b1", by="op-wang", reason="twin brother, confirmed")
    # an operator's unlink is a manual link of b1 to its own golden record
    summary = relink(mpi)
    assert mpi.golden_of("b1") == new != mpi.golden_of("a1")
    assert summary.pinned >= 1
    items, _ = mpi.review_queue()
    assert not [i for i in items if {i.source, i.matched_source} == {"Patient/a1", "Patient/b1"}]
    assert not relink(mpi).changed


def test_certainly_not_between_automatic_records_is_never_relinked(repo, mpi):
    put(repo, patient("a1", "county", rid=ZHANG), patient("b1", "clinic", rid=ZHANG))
    assert mpi.golden_of("a1") == mpi.golden_of("b1")
    # an operator marks the two sources different people without moving either: the next
    # batch decision must separate them and never propose the pair again
    mpi.mark_certainly_not("Patient/a1", "Patient/b1", by="op", reason="different people")
    summary = relink(mpi)
    assert summary.links_made == 1
    assert mpi.golden_of("a1") != mpi.golden_of("b1")
    items, _ = mpi.review_queue()
    assert all({i.source, i.matched_source} != {"Patient/a1", "Patient/b1"} for i in items)
    assert not relink(mpi).changed


def test_manual_links_survive_relink(repo, mpi):
    put(repo, patient("a1", "county", rid=ZHANG, phone="13800138000"))
    put(repo, patient("c1", "clinic", phone="13911112222"))  # demographics only: review
    items, _ = mpi.review_queue()
    mpi.decide_review(items[0].id, accept=True, by="op-li", reason="confirmed at the desk")
    golden = mpi.golden_of("a1")
    assert mpi.golden_of("c1") == golden
    summary = relink(mpi)
    assert mpi.golden_of("c1") == golden == mpi.golden_of("a1")
    assert summary.pinned == 2 and summary.links_made == 0
    assert not relink(mpi).changed


def test_relink_moves_sources_and_rebuilds_golden_records(repo, mpi):
    put(repo, patient("a1", "county", rid=ZHANG), patient("b1", "clinic", name="章伟", rid=ZHANG))
    golden = mpi.golden_of("a1")
    # as if an older model had kept b1 apart: move it to a golden record of its own
    with repo.transaction() as tx:
        tx.execute("UPDATE mpi_sources SET golden = 'old-b' WHERE source = 'Patient/b1'")
        mpi._refresh_golden(tx, "old-b")
        mpi._refresh_golden(tx, golden)
    assert {x["other"]["reference"] for x in repo.read("Patient", golden).resource["link"]} == {
        "Patient/a1"}
    summary = relink(mpi)
    assert (summary.links_made, summary.goldens_retired) == (1, 1)
    assert mpi.golden_of("b1") == golden
    record = repo.read("Patient", golden).resource
    assert is_golden(record)
    assert {x["other"]["reference"] for x in record["link"]} == {"Patient/a1", "Patient/b1"}
    assert repo.query("SELECT COUNT(*) FROM mpi_sources WHERE golden = 'old-b'")[0][0] == 0
    assert [h["reason"] for h in mpi.history("Patient/b1")][-1].startswith("relink:")
    assert not relink(mpi).changed


def test_renormalize_picks_up_patients_written_while_the_index_was_off(repo):
    put(repo, patient("a1", "county", rid=ZHANG), patient("b1", "clinic", rid=ZHANG))
    mpi = service_for(repo)  # not installed: nothing was indexed
    assert relink(mpi).records == 0
    summary = relink(mpi, renormalize=True)
    assert summary.records == 2 and summary.records_rewritten == 2
    assert summary.goldens_created == 1
    golden = mpi.golden_of("a1")
    assert golden and mpi.golden_of("b1") == golden
    assert is_golden(repo.read("Patient", golden).resource)
    assert not relink(mpi, renormalize=True).changed


def test_cli_relink_prints_a_bilingual_summary(engine_url):
    repo = open_repository(engine_url)
    try:
        service_for(repo).install()
        put(repo, patient("a1", "county", rid=ZHANG), patient("b1", "clinic", rid=ZHANG))
    finally:
        repo.close()
    runner = CliRunner()
    dry = runner.invoke(main, ["mpi", "relink", "--db", engine_url, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Would change (dry run)" in dry.output and "将会变更（试运行）" in dry.output
    done = runner.invoke(main, ["mpi", "relink", "--db", engine_url, "--json"])
    assert done.exit_code == 0, done.output
    assert '"changed": false' in done.output


def test_candidate_fetch_is_one_query_and_skips_oversized_blocks(repo, mpi):
    # eleven records share one phone (a placeholder number); two also share an ID
    put(repo, *[patient(f"p{n}", "county", name=f"王{'一二三四五六七八九十甲'[n]}",
                        birth=f"19{50 + n}-01-0{1 + n % 9}", phone="13000000000")
                for n in range(11)])  # fmt: skip
    put(repo, patient("z1", "county", rid=ZHANG), patient("z2", "clinic", rid=ZHANG))
    calls: list[str] = []

    def execute(sql: str, params: Any) -> Any:
        calls.append(sql)
        return repo.query(sql, params)

    keys = ["ph:13000000000", f"rid:{ZHANG}"]
    found = fetch_candidates(execute, keys, max_block=10)
    assert len(calls) == 1
    assert sorted(r.source for r, _g in found) == ["Patient/z1", "Patient/z2"]
    assert all(g == mpi.golden_of("z1") for _r, g in found)
    assert len(fetch_candidates(repo.query, keys, max_block=20)) == 13


def test_vectorised_blocking_equals_the_reference_pairs():
    sources = noisy_patients(generate_people(300, seed=9), seed=9)
    records = [record_from_patient(s.patient) for s in sources]
    lo, hi = block_pairs([sorted(blocking_keys(r)) for r in records], max_block=50)
    assert set(zip(lo.tolist(), hi.tolist(), strict=True)) == candidate_pairs(
        records, blocking_keys, max_block=50)


def test_pairs_scored_elsewhere_give_the_same_decisions(repo, mpi, tmp_path, engine_url):
    """The Spark path (bench/mpi_spark.py, run here with its local engine): export, block and
    score outside, import the pairs — the same plan as ``huitong mpi relink``."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "mpi_spark.py"
    spec = importlib.util.spec_from_file_location("mpi_spark", path)
    assert spec and spec.loader
    spark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(spark)

    population(repo, people=30, seed=8)
    mpi.mark_certainly_not("Patient/s000", "Patient/s001", by="op", reason="different")
    exported = spark.export(engine_url, tmp_path)
    assert exported["records"] == int(repo.query("SELECT COUNT(*) FROM mpi_records")[0][0])
    assert spark.score_local(tmp_path) > 0
    here = relink(mpi, dry_run=True).to_json()
    elsewhere = relink(mpi, dry_run=True, scored=spark.read_pairs(tmp_path / "pairs.csv"))
    elsewhere_json = elsewhere.to_json()
    for key in ("seconds", "pairs"):
        here.pop(key)
        elsewhere_json.pop(key)
    assert elsewhere_json == here
    applied = spark.import_pairs(engine_url, tmp_path / "pairs.csv", dry_run=False)
    assert applied["links_made"] == here["links_made"]
    assert not relink(mpi).changed


def test_components_label_each_node_with_the_smallest_of_its_component():
    rng = np.random.default_rng(3)
    n = 400
    lo, hi = rng.integers(0, n, 300), rng.integers(0, n, 300)
    labels = components(n, lo, hi)
    # reference: plain union-find
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        parent[find(a)] = find(b)
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(find(x), []).append(x)
    for members in groups.values():
        assert {int(labels[x]) for x in members} == {min(members)}


def test_stored_keys_are_trusted_only_under_the_running_key_scheme(repo, mpi):
    population(repo, people=20, seed=4)
    assert not repo.query("SELECT value FROM mpi_state WHERE name = 'key_scheme'")
    first = relink(mpi)  # no scheme recorded yet: every record's keys are recomputed
    assert first.records_rewritten == 0  # the write hook wrote exactly these keys
    assert repo.query("SELECT value FROM mpi_state")[0][0] == KEY_SCHEME
    keys_before = sorted(repo.query("SELECT key, source FROM mpi_keys"))
    victim = "Patient/s001"
    with repo.transaction() as tx:  # keys lost, as after a crash mid-write
        tx.execute("DELETE FROM mpi_keys WHERE source = ?", (victim,))
    # under the running scheme the stored keys are used as they are: nothing to rewrite
    assert relink(mpi, dry_run=True).records_rewritten == 0
    with repo.transaction() as tx:  # as if written by other key functions
        tx.execute("UPDATE mpi_state SET value = 'older' WHERE name = 'key_scheme'")
    assert relink(mpi, dry_run=True).records_rewritten == 1
    assert repo.query("SELECT value FROM mpi_state")[0][0] == "older"  # a dry run writes nothing
    fixed = relink(mpi)
    assert fixed.records_rewritten == 1
    assert sorted(repo.query("SELECT key, source FROM mpi_keys")) == keys_before
    assert repo.query("SELECT value FROM mpi_state")[0][0] == KEY_SCHEME
    assert not relink(mpi).changed


def test_small_batches_and_worker_processes_reach_the_same_links(repo, mpi, monkeypatch):
    """Components are decided a batch at a time, in other processes for big runs: cutting
    the work into many batches and handing them to workers changes no decision."""
    import huitong.mpi.relink as relink_module

    population(repo, people=60, seed=3)
    put(repo, patient("t1", "county", rid=ZHANG), patient("t2", "clinic", rid=ZHANG))
    mpi.mark_certainly_not("Patient/t1", "Patient/t2", by="op", reason="different people")
    whole = relink(mpi, dry_run=True, workers=1).to_json()
    monkeypatch.setattr(relink_module, "_BATCH", 5)
    batched = relink(mpi, dry_run=True, workers=1).to_json()
    pooled = relink(mpi, dry_run=True, workers=2).to_json()
    for summary in (whole, batched, pooled):
        summary.pop("seconds")
    assert whole == batched == pooled
    assert whole["links_made"] > 0
    # applied from many batches in worker processes, in many small write transactions
    # (several at once on PostgreSQL) ...
    monkeypatch.setattr(relink_module, "_GOLDENS_PER_TX", 3)
    relink(mpi, workers=2)
    monkeypatch.setattr(relink_module, "_BATCH", 20_000)
    again = relink(mpi, workers=1)  # ... is what one batch in this process decides too
    assert not again.changed, again.to_json()
    assert mpi.golden_of("t1") != mpi.golden_of("t2")
    # and every golden Patient lists exactly the sources linked to it
    members: dict[str, set[str]] = {}
    for source, golden in repo.query("SELECT source, golden FROM mpi_sources"):
        members.setdefault(golden, set()).add(source)
    for golden, sources in members.items():
        stored = repo.read("Patient", golden).resource
        assert {x["other"]["reference"] for x in stored["link"]} == sources


def test_the_batch_scorer_agrees_with_score_pair():
    from huitong.mpi.model import explain, score_pair
    from huitong.mpi.relink import _scorer
    from huitong.mpi.service import _corroborated_evidence, default_model

    sources = noisy_patients(generate_people(200, seed=2), seed=2)
    records = [record_from_patient(s.patient) for s in sources]
    model = default_model()
    score = _scorer(model)
    pairs = sorted(candidate_pairs(records, blocking_keys))
    assert len(pairs) > 100
    for i, j in pairs:
        full = score_pair(model, records[i], records[j])
        assert score(records[i], records[j]) == (
            full.probability, full.grade, _corroborated_evidence(explain(full)))
