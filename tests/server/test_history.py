"""history: instance, type, system — https://hl7.org/fhir/R4/http.html#history."""

from __future__ import annotations

from server_helpers import BASE, assert_outcome, create, patient


def _setup(client):
    pid = create(client, patient())["id"]
    client.put(f"/fhir/Patient/{pid}", json=patient(id=pid, active=True))
    client.delete(f"/fhir/Patient/{pid}")
    return pid


def test_instance_history_with_delete(client):
    pid = _setup(client)
    b = client.get(f"/fhir/Patient/{pid}/_history").json()
    assert b["resourceType"] == "Bundle"
    assert b["type"] == "history"
    assert b["total"] == 3
    entries = b["entry"]
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    deleted, updated, created = entries
    assert deleted["request"] == {"method": "DELETE", "url": f"Patient/{pid}"}
    assert "resource" not in deleted
    assert deleted["response"]["status"] == "204 No Content"
    assert updated["request"] == {"method": "PUT", "url": f"Patient/{pid}"}
    assert updated["response"]["status"] == "200 OK"
    assert updated["resource"]["active"] is True
    assert created["request"] == {"method": "POST", "url": "Patient"}
    assert created["response"]["status"] == "201 Created"
    assert created["fullUrl"] == f"{BASE}/Patient/{pid}"
    assert created["response"]["lastModified"] == created["resource"]["meta"]["lastUpdated"]
    assert b["link"][0] == {"relation": "self",
                            "url": f"{BASE}/Patient/{pid}/_history?_count=10"}


def test_history_paging_links(client):
    pid = create(client, patient())["id"]
    for day in range(1, 5):
        client.put(f"/fhir/Patient/{pid}", json=patient(id=pid, birthDate=f"2000-01-0{day}"))
    first = client.get(f"/fhir/Patient/{pid}/_history?_count=2").json()
    assert first["total"] == 5
    assert len(first["entry"]) == 2
    links = {x["relation"]: x["url"] for x in first["link"]}
    assert links["next"] == f"{BASE}/Patient/{pid}/_history?_count=2&_offset=2"
    assert "previous" not in links
    second = client.get(links["next"].removeprefix("http://hie.test")).json()
    assert [e["response"]["etag"] for e in second["entry"]] == ['W/"3"', 'W/"2"']
    links2 = {x["relation"]: x["url"] for x in second["link"]}
    assert links2["previous"] == f"{BASE}/Patient/{pid}/_history?_count=2"
    last = client.get(f"/fhir/Patient/{pid}/_history?_count=2&_offset=4").json()
    assert "next" not in {x["relation"] for x in last["link"]}


def test_type_and_system_history_and_since(client):
    _setup(client)
    create(client, {"resourceType": "Organization", "name": "Clinic"})
    assert client.get("/fhir/Patient/_history").json()["total"] == 3
    assert client.get("/fhir/_history").json()["total"] == 4
    future = client.get("/fhir/_history?_since=2999-01-01").json()
    assert future["total"] == 0
    assert "entry" not in future
    assert client.get("/fhir/_history?_since=2000-01-01T00:00:00Z").json()["total"] == 4
    assert client.get("/fhir/_history?_at=2000-01-01").json()["total"] == 0


def test_history_errors(client):
    assert_outcome(client.get("/fhir/Patient/none/_history"), 404)
    assert_outcome(client.get("/fhir/_history?_since=yesterday"), 400)
    assert_outcome(client.get("/fhir/_history?_count=-1"), 400)
    assert_outcome(client.get("/fhir/_history?foo=bar"), 400)
    lenient = client.get("/fhir/_history?foo=bar", headers={"prefer": "handling=lenient"})
    assert lenient.status_code == 200
    assert_outcome(client.post("/fhir/_history"), 405)
