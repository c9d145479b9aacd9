"""PATCH with JSON Patch — https://hl7.org/fhir/R4/http.html#patch."""

from __future__ import annotations

import orjson
from server_helpers import assert_outcome, create, patient

JSON_PATCH = {"content-type": "application/json-patch+json"}


def _patch(client, url, ops, **headers):
    return client.patch(url, content=orjson.dumps(ops), headers={**JSON_PATCH, **headers})


def test_patch_applies_and_versions(client):
    pid = create(client, patient())["id"]
    r = _patch(client, f"/fhir/Patient/{pid}", [{"op": "add", "path": "/gender", "value": "male"}])
    assert r.status_code == 200
    assert r.headers["etag"] == 'W/"2"'
    assert r.json()["gender"] == "male"
    assert client.get(f"/fhir/Patient/{pid}").json()["gender"] == "male"
    history = client.get(f"/fhir/Patient/{pid}/_history").json()
    assert history["total"] == 2


def test_patch_if_match(client):
    pid = create(client, patient())["id"]
    ops = [{"op": "replace", "path": "/name/0/family", "value": "Li"}]
    assert_outcome(_patch(client, f"/fhir/Patient/{pid}", ops, **{"if-match": 'W/"2"'}), 412)
    assert _patch(client, f"/fhir/Patient/{pid}", ops, **{"if-match": 'W/"1"'}).status_code == 200


def test_patch_failures(client):
    pid = create(client, patient())["id"]
    url = f"/fhir/Patient/{pid}"
    assert_outcome(_patch(client, url, [{"op": "replace", "path": "/id", "value": "x"}]), 422)
    assert_outcome(
        _patch(client, url, [{"op": "replace", "path": "/resourceType", "value": "Group"}]), 422
    )
    assert_outcome(_patch(client, url, [{"op": "test", "path": "/gender", "value": "x"}]), 422)
    assert_outcome(_patch(client, url, [{"op": "remove", "path": "/nothing"}]), 422)
    assert_outcome(_patch(client, url, [{"op": "frobnicate", "path": "/a"}]), 400)
    assert_outcome(_patch(client, url, {"op": "add"}), 400)
    assert_outcome(_patch(client, url, [{"op": "add", "path": 5, "value": 1}]), 400)
    # the result must still be a valid Patient
    assert_outcome(_patch(client, url, [{"op": "add", "path": "/bogus", "value": 1}]), 400)
    assert_outcome(_patch(client, url, [{"op": "add", "path": "/gender", "value": 7}]), 400)
    # FHIRPath Patch (Parameters) is not supported
    r = client.patch(url, json={"resourceType": "Parameters"})
    assert_outcome(r, 415)
    assert_outcome(_patch(client, "/fhir/Patient/absent", []), 404)
    client.delete(url)
    assert_outcome(_patch(client, url, []), 410)
    assert client.get(f"/fhir/Patient/{pid}/_history").json()["total"] == 2  # nothing written


def test_conditional_patch(client):
    ident = {"identifier": [{"system": "urn:x", "value": "p"}]}
    pid = create(client, patient(**ident))["id"]
    ops = [{"op": "add", "path": "/active", "value": True}]
    r = _patch(client, "/fhir/Patient?identifier=urn:x|p", ops)
    assert r.status_code == 200
    assert r.json()["id"] == pid
    assert_outcome(_patch(client, "/fhir/Patient?identifier=urn:x|none", ops), 404)
    create(client, patient(**ident))
    assert_outcome(_patch(client, "/fhir/Patient?identifier=urn:x|p", ops), 412)
