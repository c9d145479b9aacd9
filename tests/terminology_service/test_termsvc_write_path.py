"""Translation in the one write path: institution and region-wide ingest ConceptMaps, the
original coding kept, the unmapped queue, and the switch — on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from termsvc_helpers import (
    ATC,
    codings,
    drug_system,
    ingest_map,
    make_app,
    medication_request,
    write_patients,
)

from huitong.store import Repository


def _queue(repo: Repository) -> list[tuple[str, str, str, int]]:
    rows = repo.query(
        "SELECT institution, system, code, COUNT(*) FROM terminology_unmapped "
        "GROUP BY institution, system, code ORDER BY 1, 2, 3"
    )
    return [(a, b, c, int(n)) for a, b, c, n in rows]


def test_institution_map_adds_standard_coding_beside_the_original(repo: Repository) -> None:
    client = make_app(repo)
    write_patients(client, ("pa", "hosp-a"), ("pb", "hosp-b"))
    cm = ingest_map(
        "ingest-hosp-a", "Organization/hosp-a", drug_system("hosp-a"), {"A001": "B01AC06"}
    )
    assert client.put("/fhir/ConceptMap/ingest-hosp-a", json=cm).status_code == 201

    r = client.post(
        "/fhir/MedicationRequest", json=medication_request("pa", "hosp-a", "A001", "阿司匹林")
    )
    assert r.status_code == 201, r.text
    stored = r.json()
    assert codings(stored) == [(drug_system("hosp-a"), "A001"), (ATC, "B01AC06")]
    original, added = stored["medicationCodeableConcept"]["coding"]
    assert original == {"system": drug_system("hosp-a"), "code": "A001", "display": "阿司匹林"}
    assert added["userSelected"] is False
    # The added coding is indexed: a search by the standard code finds the record.
    found = client.get(f"/fhir/MedicationRequest?code={ATC}|B01AC06").json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [stored["id"]]

    # hosp-a's map is not hosp-b's: the same local code there stays local and is queued.
    r = client.post(
        "/fhir/MedicationRequest", json=medication_request("pb", "hosp-a", "A001", "阿司匹林")
    )
    assert codings(r.json()) == [(drug_system("hosp-a"), "A001")]
    assert _queue(repo) == [("Organization/hosp-b", drug_system("hosp-a"), "A001", 1)]


def test_region_map_applies_everywhere_and_the_institution_map_wins(repo: Repository) -> None:
    client = make_app(repo)
    write_patients(client, ("pa", "hosp-a"), ("pb", "hosp-b"))
    shared = "urn:huitong:region:codesystem:drug"
    region = ingest_map("ingest-region", "region", shared, {"X1": "N02BA01"})
    own = ingest_map("ingest-hosp-a", "Organization/hosp-a", shared, {"X1": "B01AC06"})
    for cm in (region, own):
        assert client.put(f"/fhir/ConceptMap/{cm['id']}", json=cm).status_code == 201

    def written(pid: str, org: str) -> list[tuple[str | None, str | None]]:
        body = medication_request(pid, org, "X1", "aspirin")
        body["medicationCodeableConcept"]["coding"][0]["system"] = shared
        r = client.post("/fhir/MedicationRequest", json=body)
        assert r.status_code == 201, r.text
        return codings(r.json())

    assert written("pa", "hosp-a") == [(shared, "X1"), (ATC, "B01AC06")]
    assert written("pb", "hosp-b") == [(shared, "X1"), (ATC, "N02BA01")]
    assert _queue(repo) == []


def test_a_map_without_the_ingest_context_changes_nothing(repo: Repository) -> None:
    client = make_app(repo)
    write_patients(client, ("pa", "hosp-a"))
    cm = ingest_map("plain", "Organization/hosp-a", drug_system("hosp-a"), {"A001": "B01AC06"})
    del cm["useContext"]  # a map for $translate only
    assert client.put("/fhir/ConceptMap/plain", json=cm).status_code == 201
    r = client.post(
        "/fhir/MedicationRequest", json=medication_request("pa", "hosp-a", "A001", "阿司匹林")
    )
    assert codings(r.json()) == [(drug_system("hosp-a"), "A001")]


def test_a_changed_map_applies_to_the_next_write(repo: Repository) -> None:
    client = make_app(repo)
    write_patients(client, ("pa", "hosp-a"))
    body = medication_request("pa", "hosp-a", "A001", "阿司匹林")
    assert codings(client.post("/fhir/MedicationRequest", json=body).json()) == [
        (drug_system("hosp-a"), "A001")
    ]
    cm = ingest_map(
        "ingest-hosp-a", "Organization/hosp-a", drug_system("hosp-a"), {"A001": "B01AC06"}
    )
    assert client.put("/fhir/ConceptMap/ingest-hosp-a", json=cm).status_code == 201
    assert codings(client.post("/fhir/MedicationRequest", json=body).json())[1] == (ATC, "B01AC06")
    cm["group"][0]["element"][0]["target"][0]["code"] = "N02BA01"
    assert client.put("/fhir/ConceptMap/ingest-hosp-a", json=cm).status_code == 200
    assert codings(client.post("/fhir/MedicationRequest", json=body).json())[1] == (ATC, "N02BA01")
    client.delete("/fhir/ConceptMap/ingest-hosp-a")
    assert codings(client.post("/fhir/MedicationRequest", json=body).json()) == [
        (drug_system("hosp-a"), "A001")
    ]


def test_rewriting_a_translated_record_adds_nothing_twice(repo: Repository) -> None:
    client = make_app(repo)
    write_patients(client, ("pa", "hosp-a"))
    cm = ingest_map(
        "ingest-hosp-a", "Organization/hosp-a", drug_system("hosp-a"), {"A001": "B01AC06"}
    )
    client.put("/fhir/ConceptMap/ingest-hosp-a", json=cm)
    stored = client.post(
        "/fhir/MedicationRequest", json=medication_request("pa", "hosp-a", "A001", "阿司匹林")
    ).json()
    # The same content again is no new version (the store keeps the current one); a real
    # change goes through translation once more, which must find the standard coding there.
    same = client.put(f"/fhir/MedicationRequest/{stored['id']}", json=stored).json()
    assert codings(same) == codings(stored) and same["meta"]["versionId"] == "1"
    changed = {**stored, "note": [{"text": "复诊 / follow-up"}]}
    again = client.put(f"/fhir/MedicationRequest/{stored['id']}", json=changed).json()
    assert codings(again) == codings(stored)
    assert again["meta"]["versionId"] == "2"


def test_the_queue_counts_records_once_each_and_remembers_when(repo: Repository) -> None:
    client = make_app(repo)
    write_patients(client, ("pa", "hosp-a"))
    entries = [
        {
            "resource": medication_request("pa", "hosp-a", "YP-9", "阿斯匹林"),
            "request": {"method": "POST", "url": "MedicationRequest"},
        }
        for _ in range(3)
    ]
    r = client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
    )
    assert r.status_code == 200, r.text
    assert _queue(repo) == [("Organization/hosp-a", drug_system("hosp-a"), "YP-9", 3)]
    # Writing one of them again does not count it twice, but moves its last-seen time.
    first = r.json()["entry"][0]["response"]["location"].split("/_history")[0]
    before = repo.query(
        "SELECT first_seen, last_seen FROM terminology_unmapped WHERE res_id = ?",
        [first.split("/")[1]],
    )[0]
    current = client.get(f"/fhir/{first}").json()
    assert client.put(f"/fhir/{first}", json=current).status_code == 200
    after = repo.query(
        "SELECT first_seen, last_seen FROM terminology_unmapped WHERE res_id = ?",
        [first.split("/")[1]],
    )[0]
    assert _queue(repo)[0][3] == 3
    assert after[0] == before[0] and after[1] > before[1]


def test_a_refused_write_queues_nothing(repo: Repository) -> None:
    client = make_app(repo)
    write_patients(client, ("pa", "hosp-a"))
    bad = medication_request("pa", "hosp-a", "YP-9", "阿斯匹林")
    bad["status"] = 42  # structurally invalid: validated after the transform, refused
    assert client.post("/fhir/MedicationRequest", json=bad).status_code == 400
    assert _queue(repo) == []


@pytest.mark.parametrize(
    ("translate", "expect_added", "routes"),
    [
        ("on", True, 200),
        ("off", False, 404),
    ],
)
def test_the_translate_setting(
    repo: Repository, translate: str, expect_added: bool, routes: int
) -> None:
    client = make_app(repo, translate=translate)
    write_patients(client, ("pa", "hosp-a"))
    cm = ingest_map(
        "ingest-hosp-a", "Organization/hosp-a", drug_system("hosp-a"), {"A001": "B01AC06"}
    )
    client.put("/fhir/ConceptMap/ingest-hosp-a", json=cm)
    r = client.post(
        "/fhir/MedicationRequest", json=medication_request("pa", "hosp-a", "A001", "阿司匹林")
    )
    assert ((ATC, "B01AC06") in codings(r.json())) is expect_added
    assert client.get("/api/terminology/unmapped").status_code == routes
