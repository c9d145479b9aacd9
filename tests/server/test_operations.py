"""$everything, $validate, $meta, $meta-add, $meta-delete — https://hl7.org/fhir/R4/operations.html."""

from __future__ import annotations

from server_helpers import BASE, assert_outcome, create, patient

TAG = {"system": "urn:huitong:test", "code": "vip"}


def _obs(pid):
    return {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": f"Patient/{pid}"}}


def test_everything(client):
    pid = create(client, patient())["id"]
    other = create(client, patient())["id"]
    for _ in range(3):
        create(client, _obs(pid))
    create(client, _obs(other))
    b = client.get(f"/fhir/Patient/{pid}/$everything").json()
    assert b["type"] == "searchset"
    types = sorted(e["resource"]["resourceType"] for e in b["entry"])
    assert types == ["Observation"] * 3 + ["Patient"]
    page = client.get(f"/fhir/Patient/{pid}/$everything?_count=2").json()
    links = {x["relation"]: x["url"] for x in page["link"]}
    assert links["next"] == f"{BASE}/Patient/{pid}/$everything?_count=2&_offset=2"
    assert len(page["entry"]) == 2
    only = client.get(f"/fhir/Patient/{pid}/$everything?_type=Observation").json()
    assert {e["resource"]["resourceType"] for e in only["entry"]} == {"Observation"}
    post = client.post(f"/fhir/Patient/{pid}/$everything", json={
        "resourceType": "Parameters", "parameter": [{"name": "_count", "valueInteger": 1}]})
    assert post.status_code == 200
    assert len(post.json()["entry"]) == 1
    assert client.get(f"/fhir/Patient/{pid}/$everything?_since=2999-01-01").json().get(
        "entry", []) == []
    assert_outcome(client.get("/fhir/Patient/absent/$everything"), 404)
    assert_outcome(client.get(f"/fhir/Patient/{pid}/$everything?_type=Nope"), 400)
    assert_outcome(client.get(f"/fhir/Patient/{pid}/$everything?start=2020"), 400)
    assert_outcome(client.get(f"/fhir/Observation/{pid}/$everything"), 404)


def test_validate(client):
    ok = client.post("/fhir/Patient/$validate", json=patient())
    assert ok.status_code == 200
    assert ok.json()["issue"] == [
        {"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    bad = client.post("/fhir/Patient/$validate", json={"resourceType": "Patient", "x": 1})
    assert bad.status_code == 200
    assert bad.json()["issue"][0]["severity"] == "error"
    wrapped = client.post("/fhir/Patient/$validate", json={
        "resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient()}]})
    assert wrapped.json()["issue"][0]["diagnostics"] == "All OK"
    wrong_type = client.post("/fhir/Observation/$validate", json=patient())
    assert wrong_type.json()["issue"][0]["severity"] == "error"
    pid = create(client, patient())["id"]
    assert client.get(f"/fhir/Patient/{pid}/$validate").json()["issue"][0][
        "diagnostics"] == "All OK"
    mismatch = client.post(f"/fhir/Patient/{pid}/$validate", json=patient(id="other"))
    assert mismatch.json()["issue"][0]["severity"] == "error"
    assert_outcome(client.post("/fhir/Patient/$validate", json={"resourceType": "Parameters"}),
                   400)
    assert client.get(f"/fhir/Patient/{pid}/_history").json()["total"] == 1  # nothing stored


def test_meta_operations(client):
    pid = create(client, patient(meta={"tag": [TAG]}))["id"]
    create(client, {"resourceType": "Organization", "name": "x",
                    "meta": {"profile": ["http://example.org/p"]}})
    inst = client.get(f"/fhir/Patient/{pid}/$meta").json()
    assert inst["resourceType"] == "Parameters"
    assert inst["parameter"][0]["name"] == "return"
    assert inst["parameter"][0]["valueMeta"]["tag"] == [TAG]
    typ = client.get("/fhir/Patient/$meta").json()["parameter"][0]["valueMeta"]
    assert typ == {"tag": [TAG]}
    system = client.get("/fhir/$meta").json()["parameter"][0]["valueMeta"]
    assert system == {"profile": ["http://example.org/p"], "tag": [TAG]}

    sec = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
    added = client.post(f"/fhir/Patient/{pid}/$meta-add", json={
        "resourceType": "Parameters",
        "parameter": [{"name": "meta", "valueMeta": {"security": [sec], "tag": [TAG]}}]})
    assert added.status_code == 200
    meta = added.json()["parameter"][0]["valueMeta"]
    assert meta["tag"] == [TAG]
    assert meta["security"] == [sec]
    removed = client.post(f"/fhir/Patient/{pid}/$meta-delete", json={
        "resourceType": "Parameters", "parameter": [{"name": "meta", "valueMeta": {"tag": [TAG]}}]})
    meta = removed.json()["parameter"][0]["valueMeta"]
    assert "tag" not in meta
    assert meta["security"] == [sec]
    assert client.get(f"/fhir/Patient/{pid}").json()["meta"]["security"] == [sec]
    assert_outcome(client.get(f"/fhir/Patient/{pid}/$meta-add"), 405)
    assert_outcome(client.post(f"/fhir/Patient/{pid}/$meta-add",
                               json={"resourceType": "Parameters"}), 400)
    assert_outcome(client.post("/fhir/Patient/absent/$meta-add", json={
        "resourceType": "Parameters", "parameter": [{"name": "meta", "valueMeta": {}}]}), 404)


def test_unknown_operation(client):
    assert_outcome(client.get("/fhir/$nope"), 404)
    assert_outcome(client.get("/fhir/Patient/$everything"), 404)
    assert_outcome(client.get("/fhir/$validate"), 404)
