"""Loading data: Synthea bundles through the FHIR API on both engines, and `huitong import`."""

from __future__ import annotations

import io
import tarfile
from collections import Counter
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from huitong.cli import main
from huitong.config import Settings
from huitong.importer import InProcessTarget, iter_bundles, load_bundles
from huitong.store import Repository
from huitong_testdata import source_patients, synthea_bundles


def _types(bundle: dict) -> Counter[str]:
    return Counter(e["resource"]["resourceType"] for e in bundle["entry"])


@pytest.mark.slow
def test_synthea_sample_loads_with_exact_per_type_counts(
    repo: Repository, engine_url: str
) -> None:
    bundles = [orjson.loads(b) for b in synthea_bundles(6)]
    expected: Counter[str] = Counter()
    for b in bundles:
        expected.update(_types(b))
    target = InProcessTarget(repo, Settings.from_env(database_url=engine_url))
    try:
        counts = load_bundles(target, bundles, label="test")
    finally:
        target.close()
    assert counts.pop("__errors__") == 0
    assert counts == expected
    from huitong.fhir.search.parse import parse_search

    # Every resource is in the database, counted per type by the store itself; the identity
    # service added one golden Patient per person (Synthea people are all different).
    golden = repo.search(parse_search("Patient", [("_tag", "urn:huitong:mpi|golden"),
                                                  ("_summary", "count")])).total
    assert golden == expected["Patient"]
    assert repo.counts_by_type() == {**expected, "Patient": expected["Patient"] + golden}
    # urn:uuid references were rewritten and are searchable: each Patient's Observations
    # are found through the patient search parameter.
    patients = repo.search(parse_search("Patient", [("_count", "1000"),
                                                    ("_tag:not", "urn:huitong:mpi|golden")])).matches
    total_obs = 0
    for p in patients:
        q = parse_search("Observation", [("patient", p.id), ("_summary", "count")])
        total_obs += repo.search(q).total or 0
    assert total_obs == expected["Observation"]


def _patient(i: int, **extra: object) -> dict:
    return {"resourceType": "Patient", "id": f"p{i}", "name": [{"family": f"F{i}"}], **extra}


def test_iter_bundles_reads_json_ndjson_folders_and_archives(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "one.json").write_bytes(orjson.dumps(_patient(1)))
    (folder / "many.ndjson").write_bytes(
        b"\n".join(orjson.dumps(_patient(i)) for i in range(2, 5)) + b"\n"
    )
    coll = {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": {"resourceType": "Patient", "name": [{"family": "X"}]}}]}
    (folder / "coll.json").write_bytes(orjson.dumps(coll))
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        data = orjson.dumps(_patient(9))
        info = tarfile.TarInfo("inner/nine.json")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    bundles = list(iter_bundles([folder, archive]))
    requests = [e["request"] for nb in bundles for e in nb.bundle["entry"]]
    assert {"method": "PUT", "url": "Patient/p1"} in requests
    assert {"method": "PUT", "url": "Patient/p9"} in requests
    assert {"method": "POST", "url": "Patient"} in requests  # no id: POST
    assert sum(1 for r in requests if r["url"].startswith("Patient/p")) == 5
    assert all(nb.bundle["type"] == "transaction" for nb in bundles)


def test_import_command_loads_and_summarises(tmp_path: Path) -> None:
    src = tmp_path / "p.ndjson"
    src.write_bytes(b"\n".join(orjson.dumps(_patient(i)) for i in range(3)))
    db = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(main, ["import", str(src), "--db", db])
    assert result.exit_code == 0, result.output
    assert "Patient" in result.output and "3" in result.output
    # idempotent: importing the same file again keeps three patients, and as nothing in
    # them changed, no new versions either
    result = CliRunner().invoke(main, ["import", str(src), "--db", db])
    assert result.exit_code == 0, result.output
    from huitong.store import open_repository

    r = open_repository(db)
    assert source_patients(r) == 3 and set(r.counts_by_type()) == {"Patient"}
    assert r.read("Patient", "p1").version_id == 1
    r.close()


def test_import_command_reports_a_bad_bundle_and_exits_nonzero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps({"resourceType": "Patient", "birthDate": "not-a-date"}))
    result = CliRunner().invoke(main, ["import", str(bad), "--db", f"sqlite:///{tmp_path}/y.db"])
    assert result.exit_code == 1
    assert "HTTP 400" in result.output
