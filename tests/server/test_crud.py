"""read, vread, create, update, delete over HTTP — https://hl7.org/fhir/R4/http.html."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from server_helpers import BASE, FHIR_JSON, assert_outcome, create, patient

from huitong.fhir.dates import parse_date_range


def test_create_returns_201_location_etag_and_the_resource(client):
    r = client.post("/fhir/Patient", json=patient(id="ignored-by-server"))
    assert r.status_code == 201
    body = r.json()
    pid = body["id"]
    assert pid != "ignored-by-server"
    assert r.headers["location"] == f"{BASE}/Patient/{pid}/_history/1"
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["content-type"] == FHIR_JSON
    assert body["meta"]["versionId"] == "1"
    lo, _ = parse_date_range(body["meta"]["lastUpdated"])
    assert parsedate_to_datetime(r.headers["last-modified"]).timestamp() == lo // 1_000_000


def test_read_returns_current_version_with_headers(client):
    pid = create(client, patient())["id"]
    r = client.get(f"/fhir/Patient/{pid}")
    assert r.status_code == 200
    assert r.headers["etag"] == 'W/"1"'
    assert "last-modified" in r.headers
    assert r.json()["name"][0]["family"] == "Wang"


def test_read_unknown_id_is_404_and_unknown_type_is_404(client):
    assert_outcome(client.get("/fhir/Patient/nope"), 404, "not-found")
    assert_outcome(client.get("/fhir/NotAType/1"), 404, "not-found")


def test_read_malformed_id_is_400(client):
    assert_outcome(client.get("/fhir/Patient/" + "x" * 65), 400, "value")


def test_if_none_match_current_version_is_304(client):
    pid = create(client, patient())["id"]
    r = client.get(f"/fhir/Patient/{pid}", headers={"if-none-match": 'W/"1"'})
    assert r.status_code == 304
    assert r.content == b""
    assert client.get(f"/fhir/Patient/{pid}", headers={"if-none-match": 'W/"0"'}).status_code == 200


def test_head_has_headers_and_no_body(client):
    pid = create(client, patient())["id"]
    r = client.request("HEAD", f"/fhir/Patient/{pid}")
    assert r.status_code == 200
    assert r.headers["etag"] == 'W/"1"'
    assert r.content == b""


def test_vread_versions_and_errors(client):
    pid = create(client, patient())["id"]
    client.put(f"/fhir/Patient/{pid}", json=patient(id=pid, active=True))
    r1 = client.get(f"/fhir/Patient/{pid}/_history/1")
    assert r1.status_code == 200
    assert r1.headers["etag"] == 'W/"1"'
    assert "active" not in r1.json()
    r2 = client.get(f"/fhir/Patient/{pid}/_history/2")
    assert r2.json()["active"] is True
    assert_outcome(client.get(f"/fhir/Patient/{pid}/_history/3"), 404)
    assert_outcome(client.get(f"/fhir/Patient/{pid}/_history/abc"), 404)
    client.delete(f"/fhir/Patient/{pid}")
    assert_outcome(client.get(f"/fhir/Patient/{pid}/_history/3"), 410, "deleted")


def test_create_rejects_wrong_type_and_invalid_resources(client):
    assert_outcome(client.post("/fhir/Observation", json=patient()), 400)
    assert_outcome(client.post("/fhir/Patient", json={"resourceType": "Patient", "bogus": 1}),
                   400)
    assert_outcome(client.post("/fhir/Patient", json=[1, 2]), 400)
    assert_outcome(client.post("/fhir/Patient", content=b""), 400)


def test_conditional_create_if_none_exist(client):
    ident = {"identifier": [{"system": "urn:oid:1.2.3", "value": "110101"}]}
    hdr = {"if-none-exist": "identifier=urn:oid:1.2.3|110101"}
    first = client.post("/fhir/Patient", json=patient(**ident), headers=hdr)
    assert first.status_code == 201
    again = client.post("/fhir/Patient", json=patient(**ident), headers=hdr)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["etag"] == 'W/"1"'  # nothing written
    create(client, patient(**ident))  # a second match now exists
    assert_outcome(client.post("/fhir/Patient", json=patient(**ident), headers=hdr), 412)


def test_update_as_create_then_update(client):
    r = client.put("/fhir/Patient/p-1", json=patient(id="p-1"))
    assert r.status_code == 201
    assert r.headers["location"] == f"{BASE}/Patient/p-1/_history/1"
    r = client.put("/fhir/Patient/p-1", json=patient(id="p-1", gender="female"))
    assert r.status_code == 200
    assert r.headers["etag"] == 'W/"2"'
    assert r.json()["gender"] == "female"


def test_update_id_rules(client):
    assert_outcome(client.put("/fhir/Patient/p-1", json=patient()), 400, "required")
    assert_outcome(client.put("/fhir/Patient/p-1", json=patient(id="p-2")), 400, "value")
    assert_outcome(client.put("/fhir/Observation/p-1", json=patient(id="p-1")), 400)


def test_update_if_match(client):
    client.put("/fhir/Patient/p-1", json=patient(id="p-1"))
    stale = client.put("/fhir/Patient/p-1", json=patient(id="p-1"), headers={"if-match": 'W/"7"'})
    assert_outcome(stale, 412, "conflict")
    ok = client.put("/fhir/Patient/p-1", json=patient(id="p-1", gender="male"),
                    headers={"if-match": 'W/"1"'})
    assert ok.status_code == 200
    assert ok.headers["etag"] == 'W/"2"'
    assert_outcome(
        client.put("/fhir/Patient/p-1", json=patient(id="p-1"), headers={"if-match": "nope"}),
        400,
    )


def test_update_without_change_keeps_the_version(client):
    """An update that changes nothing but meta's bookkeeping makes no new version (as HAPI
    FHIR): the answer is the current version, and history shows no extra entry."""
    first = client.put("/fhir/Patient/p-2", json=patient(id="p-2", gender="female")).json()
    again = client.put(
        "/fhir/Patient/p-2",
        json=patient(id="p-2", gender="female", meta={"versionId": "9", "lastUpdated": "2001-01-01T00:00:00Z"}),
    )
    assert again.status_code == 200
    assert again.headers["etag"] == 'W/"1"'
    assert again.json()["meta"] == first["meta"]
    assert client.get("/fhir/Patient/p-2/_history").json()["total"] == 1
    # a tag is content: it makes a version; so does a decimal written with another precision
    tagged = client.put("/fhir/Patient/p-2", json=patient(
        id="p-2", gender="female", meta={"tag": [{"system": "urn:t", "code": "x"}]}))
    assert tagged.headers["etag"] == 'W/"2"'
    obs = {"resourceType": "Observation", "id": "o-1", "status": "final",
           "code": {"text": "x"}, "valueQuantity": {"value": 1.0}}
    client.put("/fhir/Observation/o-1", json=obs)
    r = client.put("/fhir/Observation/o-1", json={**obs, "valueQuantity": {"value": 1}})
    assert r.headers["etag"] == 'W/"2"'
    # after a delete the same content comes back as a new version
    client.delete("/fhir/Observation/o-1")
    back = client.put("/fhir/Observation/o-1", json={**obs, "valueQuantity": {"value": 1}})
    assert back.status_code == 201
    assert back.headers["etag"] == 'W/"4"'


def test_conditional_update(client):
    ident = {"identifier": [{"system": "urn:x", "value": "7"}]}
    r = client.put("/fhir/Patient?identifier=urn:x|7", json=patient(**ident))
    assert r.status_code == 201
    pid = r.json()["id"]
    r = client.put("/fhir/Patient?identifier=urn:x|7", json=patient(gender="male", **ident))
    assert r.status_code == 200
    assert r.json()["id"] == pid
    assert r.headers["etag"] == 'W/"2"'
    # a body id that is not the match's
    assert_outcome(client.put("/fhir/Patient?identifier=urn:x|7",
                              json=patient(id="other", **ident)), 400)
    # no match, but the body's id belongs to another resource
    client.put("/fhir/Patient/taken", json=patient(id="taken"))
    assert_outcome(client.put("/fhir/Patient?identifier=urn:x|none",
                              json=patient(id="taken")), 409)
    create(client, patient(**ident))
    assert_outcome(client.put("/fhir/Patient?identifier=urn:x|7", json=patient(**ident)), 412)


def test_prefer_return_variants(client):
    minimal = client.post("/fhir/Patient", json=patient(), headers={"prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert minimal.headers["location"].endswith("/_history/1")
    oo = client.post("/fhir/Patient", json=patient(),
                     headers={"prefer": "return=OperationOutcome"})
    assert oo.status_code == 201
    assert oo.json()["resourceType"] == "OperationOutcome"
    assert oo.json()["issue"][0]["severity"] == "information"
    rep = client.post("/fhir/Patient", json=patient(),
                      headers={"prefer": "return=representation"})
    assert rep.json()["resourceType"] == "Patient"


def test_delete_then_read_is_gone_and_delete_is_idempotent(client):
    pid = create(client, patient())["id"]
    r = client.delete(f"/fhir/Patient/{pid}")
    assert r.status_code == 204
    assert r.headers["etag"] == 'W/"2"'
    assert r.content == b""
    assert_outcome(client.get(f"/fhir/Patient/{pid}"), 410, "deleted")
    again = client.delete(f"/fhir/Patient/{pid}")
    assert again.status_code == 204
    assert "etag" not in again.headers
    assert client.delete("/fhir/Patient/never-was").status_code == 204
    oo = client.delete("/fhir/Patient/never-was", headers={"prefer": "return=OperationOutcome"})
    assert oo.status_code == 200
    assert oo.json()["resourceType"] == "OperationOutcome"


def test_delete_if_match(client):
    pid = create(client, patient())["id"]
    assert_outcome(client.delete(f"/fhir/Patient/{pid}", headers={"if-match": 'W/"2"'}), 412)
    r = client.delete(f"/fhir/Patient/{pid}", headers={"if-match": 'W/"1"'})
    assert r.status_code == 204
    assert r.headers["etag"] == 'W/"2"'


def test_recreate_after_delete(client):
    client.put("/fhir/Patient/p-1", json=patient(id="p-1"))
    client.delete("/fhir/Patient/p-1")
    r = client.put("/fhir/Patient/p-1", json=patient(id="p-1"))
    assert r.status_code == 201
    assert r.headers["etag"] == 'W/"3"'


def test_conditional_delete_single_match_only(client):
    ident = {"identifier": [{"system": "urn:x", "value": "d"}]}
    pid = create(client, patient(**ident))["id"]
    assert client.delete("/fhir/Patient?identifier=urn:x|nothing").status_code == 204
    r = client.delete("/fhir/Patient?identifier=urn:x|d")
    assert r.status_code == 204
    assert_outcome(client.get(f"/fhir/Patient/{pid}"), 410)
    create(client, patient(**ident))
    create(client, patient(**ident))
    assert_outcome(client.delete("/fhir/Patient?identifier=urn:x|d"), 412)
    assert_outcome(client.delete("/fhir/Patient"), 400)


def test_read_with_summary_and_elements_is_subsetted(client):
    pid = create(client, patient(gender="male", birthDate="1980-01-01"))["id"]
    r = client.get(f"/fhir/Patient/{pid}?_elements=gender")
    body = r.json()
    assert body["gender"] == "male"
    assert "name" not in body and "birthDate" not in body
    assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "SUBSETTED", "display": "Resource encoded in summary mode"} in body[
        "meta"]["tag"]
