"""batch and transaction — https://hl7.org/fhir/R4/http.html#transaction."""

from __future__ import annotations

import base64

import orjson
from server_helpers import BASE, assert_outcome, create, patient

from huitong.fhir.dates import parse_date_range

UUID_P = "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"
UUID_E = "urn:uuid:aa3151bd-1cbf-4d64-b04d-cd9187a4c6e1"


def _bundle(kind, *entries):
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _post(resource, full_url=None, **request):
    e = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"],
                                           **request}}
    if full_url:
        e["fullUrl"] = full_url
    return e


def _obs(subject, **extra):
    return {"resourceType": "Observation", "status": "final", "code": {"text": "bp"},
            "subject": {"reference": subject}, **extra}


def _total(client, url):
    return client.get(url).json()["total"]


def test_transaction_resolves_urn_uuid_everywhere(client):
    obs = _obs(
        UUID_P,
        encounter={"reference": UUID_E},
        text={"status": "generated",
              "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><a href="{UUID_P}">p</a></div>'},
        contained=[{"resourceType": "Provenance", "id": "prov",
                    "target": [{"reference": UUID_P}], "recorded": "2020-01-01T00:00:00Z",
                    "agent": [{"who": {"reference": UUID_P}}]}],
        extension=[{"url": "http://example.org/x", "valueReference": {"reference": UUID_P}}],
    )
    enc = {"resourceType": "Encounter", "status": "finished",
           "class": {"code": "AMB"}, "subject": {"reference": UUID_P}}
    r = client.post("/fhir", json=_bundle(
        "transaction", _post(obs), _post(enc, UUID_E), _post(patient(), UUID_P)))
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in b["entry"]]
    assert statuses == ["201 Created"] * 3
    locations = [e["response"]["location"] for e in b["entry"]]
    obs_loc, enc_loc, pat_loc = locations
    pid = pat_loc.split("/")[1]
    assert pat_loc == f"Patient/{pid}/_history/1"
    for e in b["entry"]:
        assert e["response"]["etag"] == 'W/"1"'
        parse_date_range(e["response"]["lastModified"])
        assert "resource" not in e  # minimal by default
    stored = client.get("/fhir/" + obs_loc.split("/_history")[0]).json()
    assert stored["subject"]["reference"] == f"Patient/{pid}"
    assert stored["encounter"]["reference"] == enc_loc.split("/_history")[0]
    assert stored["contained"][0]["target"][0]["reference"] == f"Patient/{pid}"
    assert stored["contained"][0]["agent"][0]["who"]["reference"] == f"Patient/{pid}"
    assert stored["extension"][0]["valueReference"]["reference"] == f"Patient/{pid}"
    assert f'href="Patient/{pid}"' in stored["text"]["div"]
    # the search index sees the rewritten reference
    assert _total(client, f"/fhir/Observation?subject=Patient/{pid}") == 1


def test_transaction_is_all_or_nothing(client):
    bad = {"resourceType": "Patient", "gender": 12}
    r = client.post("/fhir", json=_bundle(
        "transaction", _post(patient(), UUID_P), _post(_obs(UUID_P)),
        {"resource": patient(id="p-9"), "request": {"method": "PUT", "url": "Patient/p-9"}},
        _post(bad)))
    body = assert_outcome(r, 400)
    assert all(i["expression"][0] == "Bundle.entry[3]" for i in body["issue"]), body
    assert _total(client, "/fhir/Patient") == 0
    assert _total(client, "/fhir/Observation") == 0
    assert _total(client, "/fhir/_history") == 0


def test_transaction_failing_if_match_rolls_back(client):
    client.put("/fhir/Patient/p-1", json=patient(id="p-1"))
    r = client.post("/fhir", json=_bundle(
        "transaction", _post(patient()),
        {"resource": patient(id="p-1"),
         "request": {"method": "PUT", "url": "Patient/p-1", "ifMatch": 'W/"5"'}}))
    body = assert_outcome(r, 412)
    assert body["issue"][0]["expression"] == ["Bundle.entry[1]"]
    assert _total(client, "/fhir/Patient") == 1
    assert client.get("/fhir/Patient/p-1").headers["etag"] == 'W/"1"'


def test_transaction_processing_order(client):
    client.put("/fhir/Patient/old", json=patient(id="old"))
    r = client.post("/fhir", json=_bundle(
        "transaction",
        {"request": {"method": "GET", "url": "Patient?_count=50"}},
        {"resource": patient(id="p-1"), "request": {"method": "PUT", "url": "Patient/p-1"}},
        _post(patient(), UUID_P),
        {"request": {"method": "DELETE", "url": "Patient/old"}},
        {"request": {"method": "GET", "url": "Patient/p-1"}},
    ))
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    # responses stay in Bundle order; the GETs ran after every write
    search = entries[0]["resource"]
    assert search["type"] == "searchset"
    assert search["total"] == 2  # p-1 and the POSTed one; "old" was deleted first
    assert entries[1]["response"]["status"] == "201 Created"
    assert entries[2]["response"]["status"] == "201 Created"
    assert entries[3]["response"]["status"] == "204 No Content"
    assert entries[4]["resource"]["id"] == "p-1"
    assert entries[4]["response"]["status"] == "200 OK"
    # DELETE, then POST, then PUT, as the history's timestamps show
    hist = client.get("/fhir/_history?_count=50").json()["entry"]
    order = [e["request"]["method"] for e in reversed(hist)]
    assert order == ["PUT", "DELETE", "POST", "PUT"]  # first PUT is the setup


def test_transaction_conditional_references(client):
    ident = {"identifier": [{"system": "urn:oid:2.16.156", "value": "110101"}]}
    pid = create(client, patient(**ident))["id"]
    ref = "Patient?identifier=urn:oid:2.16.156|110101"
    r = client.post("/fhir", json=_bundle("transaction", _post(_obs(ref))))
    assert r.status_code == 200, r.text
    loc = r.json()["entry"][0]["response"]["location"]
    assert client.get("/fhir/" + loc).json()["subject"]["reference"] == f"Patient/{pid}"
    none = client.post("/fhir", json=_bundle(
        "transaction", _post(patient()), _post(_obs("Patient?identifier=urn:x|absent"))))
    assert assert_outcome(none, 412)["issue"][0]["expression"] == ["Bundle.entry[1]"]
    create(client, patient(**ident))
    many = client.post("/fhir", json=_bundle("transaction", _post(_obs(ref))))
    assert assert_outcome(many, 412)["issue"][0]["expression"] == ["Bundle.entry[0]"]
    assert _total(client, "/fhir/Observation") == 1


def test_transaction_if_none_exist_maps_full_url_to_existing(client):
    ident = {"identifier": [{"system": "urn:x", "value": "1"}]}
    pid = create(client, patient(**ident))["id"]
    r = client.post("/fhir", json=_bundle(
        "transaction",
        _post(patient(**ident), UUID_P, ifNoneExist="identifier=urn:x|1"),
        _post(_obs(UUID_P))))
    assert r.status_code == 200, r.text
    first, second = r.json()["entry"]
    assert first["response"]["status"] == "200 OK"
    assert first["response"]["location"] == f"Patient/{pid}/_history/1"
    obs = client.get("/fhir/" + second["response"]["location"]).json()
    assert obs["subject"]["reference"] == f"Patient/{pid}"
    assert _total(client, "/fhir/Patient") == 1


def test_transaction_conditional_put_patch_delete(client):
    ident = {"identifier": [{"system": "urn:x", "value": "c"}]}
    pid = create(client, patient(**ident))["id"]
    gone = create(client, patient(identifier=[{"system": "urn:x", "value": "gone"}]))["id"]
    ops = [{"op": "add", "path": "/active", "value": True}]
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json",
              "data": base64.b64encode(orjson.dumps(ops)).decode()}
    r = client.post("/fhir", json=_bundle(
        "transaction",
        {"resource": patient(gender="male", **ident),
         "request": {"method": "PUT", "url": "Patient?identifier=urn:x|c"}},
        {"request": {"method": "DELETE", "url": "Patient?identifier=urn:x|gone"}},
        {"resource": binary, "request": {"method": "PATCH", "url": "Patient/p-2"}},
    ))
    assert_outcome(r, 404)  # Patient/p-2 does not exist: the whole transaction fails
    assert client.get(f"/fhir/Patient/{gone}").status_code == 200
    client.put("/fhir/Patient/p-2", json=patient(id="p-2"))
    r = client.post("/fhir", json=_bundle(
        "transaction",
        {"resource": patient(gender="male", **ident),
         "request": {"method": "PUT", "url": "Patient?identifier=urn:x|c"}},
        {"request": {"method": "DELETE", "url": "Patient?identifier=urn:x|gone"}},
        {"resource": binary, "request": {"method": "PATCH", "url": "Patient/p-2"}},
    ), headers={"prefer": "return=representation"})
    assert r.status_code == 200, r.text
    put, delete, patch = r.json()["entry"]
    assert put["response"]["status"] == "200 OK"
    assert put["resource"]["id"] == pid and put["resource"]["gender"] == "male"
    assert put["fullUrl"] == f"{BASE}/Patient/{pid}"
    assert delete["response"]["status"] == "204 No Content"
    assert patch["resource"]["active"] is True
    assert client.get(f"/fhir/Patient/{gone}").status_code == 410


def test_transaction_rejects_duplicate_targets_and_bad_entries(client):
    two = _bundle("transaction",
                  {"resource": patient(id="a"), "request": {"method": "PUT", "url": "Patient/a"}},
                  {"resource": patient(id="a"), "request": {"method": "PUT", "url": "Patient/a"}})
    body = assert_outcome(client.post("/fhir", json=two), 400)
    assert body["issue"][0]["expression"] == ["Bundle.entry[1]"]
    no_request = _bundle("transaction", {"resource": patient()})
    body = assert_outcome(client.post("/fhir", json=no_request), 400)
    assert body["issue"][0]["expression"] == ["Bundle.entry[0].request"]
    wrong_type = _bundle("transaction", {"resource": patient(),
                                         "request": {"method": "POST", "url": "Observation"}})
    assert_outcome(client.post("/fhir", json=wrong_type), 400)
    assert_outcome(client.post("/fhir", json=_bundle("document")), 400)
    assert_outcome(client.post("/fhir", json=patient()), 400)
    assert_outcome(client.post("/fhir", json=_bundle(
        "transaction", {"request": {"method": "FETCH", "url": "Patient"}})), 400)
    assert _total(client, "/fhir/_history") == 0


def test_batch_entries_are_independent(client):
    client.put("/fhir/Patient/p-1", json=patient(id="p-1"))
    r = client.post("/fhir", json=_bundle(
        "batch",
        _post(patient()),
        _post({"resourceType": "Patient", "gender": 12}),
        {"request": {"method": "GET", "url": "Patient/p-1"}},
        {"request": {"method": "GET", "url": "Patient/absent"}},
        {"resource": patient(id="p-1"),
         "request": {"method": "PUT", "url": "Patient/p-1", "ifMatch": 'W/"9"'}},
        {"request": {"method": "DELETE", "url": "Patient/p-1"}},
        {"resource": _bundle("batch"), "request": {"method": "POST", "url": "/"}},
        {"resource": patient(), "request": {"method": "POST"}},
    ))
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in b["entry"]]
    assert statuses == ["201 Created", "400 Bad Request", "200 OK", "404 Not Found",
                        "412 Precondition Failed", "204 No Content", "400 Bad Request",
                        "400 Bad Request"]
    created, invalid, read, missing, stale, deleted, nested, no_url = b["entry"]
    assert created["response"]["location"].startswith("Patient/")
    assert created["response"]["etag"] == 'W/"1"'
    assert invalid["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert read["resource"]["id"] == "p-1"
    assert missing["response"]["outcome"]["issue"][0]["code"] == "not-found"
    assert stale["response"]["outcome"]["issue"][0]["code"] == "conflict"
    assert deleted["response"]["etag"] == 'W/"2"'
    assert nested["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert no_url["response"]["outcome"]["issue"][0]["expression"] == [
        "Bundle.entry[7].request.url"]
    assert _total(client, "/fhir/Patient") == 1  # the created one; p-1 deleted


def test_empty_bundles(client):
    for kind in ("batch", "transaction"):
        r = client.post("/fhir", json=_bundle(kind))
        assert r.json() == {"resourceType": "Bundle", "type": f"{kind}-response"}


def test_batch_representation(client):
    r = client.post("/fhir", json=_bundle("batch", _post(patient())),
                    headers={"prefer": "return=representation"})
    entry = r.json()["entry"][0]
    assert entry["resource"]["resourceType"] == "Patient"
    assert entry["fullUrl"] == f"{BASE}/Patient/{entry['resource']['id']}"


def test_transaction_conditional_searches_run_together_keep_their_entries(client):
    """The bundle's conditional searches run together before any write; each failure is
    still reported at its own entry, and each entry gets its own match."""
    for value in ("1", "2"):
        create(client, patient(identifier=[{"system": "urn:t", "value": value}]))
    bad = client.post("/fhir", json=_bundle(
        "transaction",
        _post(patient(), ifNoneExist="identifier=urn:t|1"),
        _post(patient(), ifNoneExist="no-such-param=1"),
    ))
    assert assert_outcome(bad, 400)["issue"][0]["expression"] == ["Bundle.entry[1]"]
    r = client.post("/fhir", json=_bundle(
        "transaction",
        _post(patient(), UUID_P, ifNoneExist="identifier=urn:t|1"),
        {"resource": patient(gender="female",
                             identifier=[{"system": "urn:t", "value": "2"}]),
         "request": {"method": "PUT", "url": "Patient?identifier=urn:t|2"}},
        {"resource": patient(identifier=[{"system": "urn:t", "value": "3"}]),
         "request": {"method": "PUT", "url": "Patient?identifier=urn:t|3"}},
        _post(_obs("Patient?identifier=urn:t|2")),
        _post(_obs(UUID_P)),
    ))
    assert r.status_code == 200, r.text
    found, updated, made, obs2, obs1 = r.json()["entry"]
    assert found["response"]["status"] == "200 OK"
    assert updated["response"]["location"].endswith("/_history/2")
    assert made["response"]["status"] == "201 Created"
    subject2 = client.get("/fhir/" + obs2["response"]["location"]).json()["subject"]
    subject1 = client.get("/fhir/" + obs1["response"]["location"]).json()["subject"]
    assert subject2["reference"] == updated["response"]["location"].split("/_history")[0]
    assert subject1["reference"] == found["response"]["location"].split("/_history")[0]
    assert _total(client, "/fhir/Patient") == 3
