"""Real transaction Bundles (Synthea) through the API: every entry created, every urn:uuid
reference resolved to a stored resource."""

from __future__ import annotations

import tarfile
from pathlib import Path

import orjson
import pytest
from server_helpers import BASE, Client

from huitong.config import Settings
from huitong.server import create_app

ARCHIVE = (Path(__file__).resolve().parents[3] / "shared" / "data" / "synthea-r4"
           / "synthea-r4-617-bundles.tar.gz")


def _bundles(patients: int) -> list[bytes]:
    if not ARCHIVE.exists():
        pytest.skip(f"shared Synthea data not found at {ARCHIVE}")
    out: list[bytes] = []
    with tarfile.open(ARCHIVE) as tf:
        for m in tf:
            name = m.name.rsplit("/", 1)[-1]
            if not (m.isfile() and name.endswith(".json")) or "Information" in name:
                continue
            f = tf.extractfile(m)
            assert f is not None
            data = f.read()
            if len(orjson.loads(data)["entry"]) <= 200:  # keep the test quick
                out.append(data)
            if len(out) == patients:
                return out
    return out


@pytest.fixture
def big_client(repo):
    c = Client(create_app(repo, Settings.from_env({}, database_url="unused", auth="off", base_url=BASE, mpi="off", quality="off", audit="off")))
    yield c
    c.close()


def test_synthea_patient_bundles(big_client):
    client = big_client
    for data in _bundles(2):
        bundle = orjson.loads(data)
        r = client.post("/fhir", content=data, headers={"content-type": "application/fhir+json"})
        assert r.status_code == 200, r.text[:500]
        entries = r.json()["entry"]
        assert len(entries) == len(bundle["entry"])
        assert {e["response"]["status"] for e in entries} == {"201 Created"}
        pid = next(e["response"]["location"].split("/")[1] for e in entries
                   if e["response"]["location"].startswith("Patient/"))
        obs = client.get(f"/fhir/Observation?subject=Patient/{pid}&_count=1").json()
        n_obs = sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
        assert obs["total"] == n_obs
        enc = client.get(f"/fhir/Encounter?patient={pid}&_include=Encounter:service-provider"
                         "&_count=1").json()
        assert [e["resource"]["resourceType"] for e in enc["entry"]] == [
            "Encounter", "Organization"]
