"""Two clients sending the same conditional create at the same moment get one resource, not
two: the conditional lookup and the create are serialised per criteria (on PostgreSQL by a
transaction-scoped advisory lock; SQLite runs one writer at a time anyway)."""

from __future__ import annotations

import threading

from server_helpers import Client

from huitong.server import create_app


def test_concurrent_conditional_creates_make_one_resource(repo, settings):
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "fullUrl": "urn:uuid:7b0f1d5e-1c1a-4d6e-9a55-0a1b2c3d4e5f",
        "resource": {"resourceType": "Patient",
                     "identifier": [{"system": "urn:mrn", "value": "RACE-1"}]},
        "request": {"method": "PUT", "url": "Patient?identifier=urn:mrn|RACE-1"}}]}
    app = create_app(repo, settings)
    start = threading.Barrier(4)
    statuses: list[int] = []

    def send() -> None:
        client = Client(app)
        try:
            start.wait()
            statuses.append(client.post("/fhir", json=bundle).status_code)
        finally:
            client.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 4
    check = Client(app)
    try:
        found = check.get("/fhir/Patient?identifier=urn:mrn|RACE-1").json()
    finally:
        check.close()
    assert found["total"] == 1
