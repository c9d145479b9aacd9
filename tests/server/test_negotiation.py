"""Formats, sizes and error shapes — https://hl7.org/fhir/R4/http.html#mime-type."""

from __future__ import annotations

from server_helpers import FHIR_JSON, MAX_BODY, assert_outcome, create, patient


def test_json_formats_accepted(client):
    pid = create(client, patient())["id"]
    for fmt in ("json", "application/json", "application/fhir+json", "application/fhir json"):
        r = client.get(f"/fhir/Patient/{pid}", params={"_format": fmt})
        assert r.status_code == 200, fmt
        assert r.headers["content-type"] == FHIR_JSON
    for accept in ("application/json", "application/fhir+json", "*/*",
                   "text/html,application/xhtml+xml,*/*;q=0.8", ""):
        assert client.get(f"/fhir/Patient/{pid}", headers={"accept": accept}).status_code == 200


def test_xml_is_not_acceptable(client):
    assert_outcome(client.get("/fhir/metadata?_format=xml"), 406)
    assert_outcome(client.get("/fhir/metadata?_format=application/fhir%2Bxml"), 406)
    assert_outcome(client.get("/fhir/metadata", headers={"accept": "application/fhir+xml"}), 406)
    assert_outcome(client.get("/fhir/metadata",
                              headers={"accept": "application/json;q=0, text/xml"}), 406)


def test_xml_body_is_unsupported_media(client):
    r = client.post("/fhir/Patient", content=b"<Patient xmlns='http://hl7.org/fhir'/>",
                    headers={"content-type": "application/fhir+xml"})
    assert_outcome(r, 415)
    r = client.post("/fhir/Patient", content=b"hello", headers={"content-type": "text/plain"})
    assert_outcome(r, 415)


def test_body_too_large(client):
    big = b'{"resourceType":"Patient","text":"' + b"x" * MAX_BODY + b'"}'
    assert_outcome(client.post("/fhir/Patient", content=big,
                               headers={"content-type": "application/fhir+json"}), 413)

    async def chunks():  # no Content-Length: checked while reading
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024
    assert_outcome(client.post("/fhir/Patient", content=chunks(),
                               headers={"content-type": "application/fhir+json"}), 413)


def test_malformed_json_is_400(client):
    r = client.post("/fhir/Patient", content=b'{"resourceType": "Patient",',
                    headers={"content-type": "application/fhir+json"})
    assert_outcome(r, 400, "structure")


def test_pretty(client):
    pid = create(client, patient())["id"]
    pretty = client.get(f"/fhir/Patient/{pid}?_pretty=true")
    assert pretty.text.startswith('{\n  "')
    assert '\n  "resourceType": "Patient"' in pretty.text
    assert "\n" not in client.get(f"/fhir/Patient/{pid}").text


def test_unknown_routes_and_methods(client):
    assert_outcome(client.get("/nowhere"), 404)
    assert_outcome(client.get("/fhir/Patient/1/2/3/4/5"), 404)
    assert_outcome(client.get("/fhir/patient"), 404)
    r = client.request("OPTIONS", "/fhir/Patient/1")
    assert_outcome(r, 405)
    assert r.headers["allow"] == "GET, PUT, PATCH, DELETE, HEAD"
    assert_outcome(client.request("TRACE", "/fhir/Patient"), 405)
    assert_outcome(client.post("/fhir/Patient/1"), 405)
    assert_outcome(client.post("/healthz"), 405)


def test_landing_and_health(client):
    assert client.get("/").json()["fhir"] == "http://hie.test/fhir"
    assert client.get("/healthz").json()["status"] == "ok"


def test_nul_characters_are_rejected_on_every_engine(client):
    assert_outcome(client.get("/fhir/Patient?name=%00"), 400, "value")
    body = b'{"resourceType":"Patient","name":[{"family":"a\\u0000b"}]}'
    assert_outcome(client.post("/fhir/Patient", content=body,
                               headers={"content-type": "application/fhir+json"}), 400, "value")
    r = client.post("/fhir/Patient/_search", content=b"name=%00",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert_outcome(r, 400, "value")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Patient?name=%00"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "Patient?name=%00"}},
         "request": {"method": "POST", "url": "Observation"}}]}
    assert_outcome(client.post("/fhir", json=bundle), 400)
