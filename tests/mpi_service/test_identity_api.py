"""One person, one record over HTTP: searches naming a golden record cover its linked
sources (reference parameters, compartments, $everything), and the operator API for the
review queue and links — through the real app on both engines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from server_helpers import Client
from test_identity_service import LI, ZHANG, patient

from huitong.config import Settings
from huitong.server import create_app


@pytest.fixture
def api(repo):
    settings = Settings.from_env({}, database_url="unused", auth="off",
                                 base_url="http://hie.test/fhir")
    client = Client(create_app(repo, settings))
    yield client
    client.close()


def _obs(pid: str, code: str) -> dict:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{pid}"}}


def _ids(resp) -> set[str]:
    assert resp.status_code == 200, resp.text
    return {e["resource"]["id"] for e in resp.json().get("entry", [])
            if e["resource"]["resourceType"] == "Observation"}


def _golden(api, pid: str) -> str:
    page = api.get(f"/fhir/Patient/{pid}").json()
    assert page["resourceType"] == "Patient"
    found = api.get("/fhir/Patient?_tag=urn:huitong:mpi|golden&_count=50").json()
    for entry in found.get("entry", []):
        links = {ln["other"]["reference"] for ln in entry["resource"].get("link", [])}
        if f"Patient/{pid}" in links:
            return entry["resource"]["id"]
    raise AssertionError(f"no golden record links Patient/{pid}")


def test_golden_record_searches_cover_every_institution(api):
    assert api.put("/fhir/Patient/a1", json=patient("a1", "county", rid=ZHANG)).status_code == 201
    assert api.put("/fhir/Patient/b1", json=patient("b1", "clinic", rid=ZHANG)).status_code == 201
    assert api.put("/fhir/Patient/x1", json=patient("x1", "clinic", name="李娜",
                   birth="1985-07-09", rid=LI, gender="female")).status_code == 201
    o1 = api.post("/fhir/Observation", json=_obs("a1", "8867-4")).json()["id"]
    o2 = api.post("/fhir/Observation", json=_obs("b1", "8867-4")).json()["id"]
    other = api.post("/fhir/Observation", json=_obs("x1", "8867-4")).json()["id"]
    golden = _golden(api, "a1")
    assert golden == _golden(api, "b1") != _golden(api, "x1")
    assert _ids(api.get(f"/fhir/Observation?patient={golden}")) == {o1, o2}
    assert _ids(api.get(f"/fhir/Observation?subject=Patient/{golden}&code=8867-4")) == {o1, o2}
    assert _ids(api.get(f"/fhir/Patient/{golden}/Observation")) == {o1, o2}
    assert _ids(api.get(f"/fhir/Patient/{golden}/$everything")) == {o1, o2}
    # a source record stays its own
    assert _ids(api.get("/fhir/Observation?patient=a1")) == {o1}
    assert other not in _ids(api.get(f"/fhir/Patient/{golden}/$everything"))


def test_review_queue_and_link_management(api):
    api.put("/fhir/Patient/a1", json=patient("a1", "county", rid=ZHANG, phone="13800138000"))
    api.put("/fhir/Patient/c1", json=patient("c1", "clinic", phone="13911112222"))
    queue = api.get("/api/mpi/review").json()
    assert queue["total"] == 1
    item = queue["items"][0]
    assert item["source"] == "Patient/c1" and item["evidence"]["fields"]
    bad = api.post(f"/api/mpi/review/{item['id']}", json={"accept": True})
    assert bad.status_code == 400  # a reason is required
    ok = api.post(f"/api/mpi/review/{item['id']}",
                  json={"accept": True, "reason": "confirmed with the patient"})
    assert ok.status_code == 200, ok.text
    golden = item["golden"].removeprefix("Patient/")
    detail = api.get(f"/api/mpi/golden/{golden}").json()
    assert {ln["source"] for ln in detail["links"]} == {"Patient/a1", "Patient/c1"}
    assert any(h["reason"] == "confirmed with the patient" for h in detail["history"])
    split = api.post("/api/mpi/unlink", json={"source": "Patient/c1", "reason": "wrong person"})
    assert split.status_code == 200
    again = api.post("/api/mpi/link", json={"source": "Patient/c1", "golden": golden,
                                            "reason": "try again"})
    assert again.status_code == 409  # certainly-not is remembered
    assert api.get("/api/mpi/golden/nope").status_code == 404


def test_match_and_pix(api):
    api.put("/fhir/Patient/a1", json=patient("a1", "county", rid=ZHANG, mrn="M-1"))
    api.put("/fhir/Patient/b1", json=patient("b1", "clinic", rid=ZHANG, mrn="M-2"))
    golden = _golden(api, "a1")
    query = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": patient("q", "elsewhere", rid=ZHANG)},
        {"name": "count", "valueInteger": 3}]}
    resp = api.post("/fhir/Patient/$match", json=query)
    assert resp.status_code == 200, resp.text
    bundle = resp.json()
    assert bundle["type"] == "searchset" and bundle["total"] >= 1
    top = bundle["entry"][0]
    assert top["resource"]["id"] == golden and 0 < top["search"]["score"] <= 1
    assert top["search"]["extension"][0]["valueCode"] == "certain"
    nobody = api.post("/fhir/Patient/$match", json={"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": patient("q", "x", name="王芳", birth="2001-01-01",
                                                 gender="female")}]})
    assert nobody.json()["total"] == 0
    assert api.post("/fhir/Patient/$match", json={"resourceType": "Parameters"}).status_code == 400
    pix = api.get("/fhir/Patient/$ihe-pix?sourceIdentifier=urn:huitong:org:county:mrn|M-1")
    assert pix.status_code == 200, pix.text
    params = pix.json()["parameter"]
    ids = {p["valueReference"]["reference"] for p in params if p["name"] == "targetId"}
    assert {"Patient/a1", "Patient/b1", f"Patient/{golden}"} <= ids
    values = {p["valueIdentifier"]["value"] for p in params if p["name"] == "targetIdentifier"}
    assert "M-2" in values and "M-1" not in values
    unknown = api.get("/fhir/Patient/$ihe-pix?sourceIdentifier=urn:x|nobody")
    assert unknown.status_code == 404
    metadata = api.get("/fhir/metadata").json()
    ops = {o["name"] for r in metadata["rest"][0]["resource"] if r["type"] == "Patient"
           for o in r.get("operation", [])}
    assert {"match", "ihe-pix"} <= ops
