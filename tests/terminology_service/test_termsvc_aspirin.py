"""The aspirin scenario end to end through the real app: twelve local spellings from four
institutions arrive, wait in the unmapped queue (most records first), the operator maps
each through the workbench (accepting a proposed candidate or correcting it), the stored
records are re-translated, and new records arrive translated — originals always kept."""

from __future__ import annotations

from typing import Any

from termsvc_helpers import (
    ATC,
    codings,
    drug_system,
    load_atc_system,
    make_app,
    medication_request,
    write_patients,
)

from huitong.store import Repository

ASPIRIN = "N02BA01"
# ATC lists acetylsalicylic acid twice (analgesic N02BA01, antiplatelet B01AC06): either is
# aspirin, and the operator accepts whichever the workbench proposes first.
ASPIRIN_CODES = ("N02BA01", "B01AC06")
# (institution, local code, how it was written there, records carrying it)
SPELLINGS = [
    ("h1", "A001", "阿司匹林", 5),
    ("h1", "YP-0032", "阿斯匹林", 2),  # 斯 for 司
    ("h1", "ASP100", "阿司匹林肠溶片", 1),
    ("h2", "aspirin", "Aspirin", 4),
    ("h2", "d-77", "aspirin tab 100mg", 1),
    ("h2", "X9", "asprin", 1),  # typo
    ("h3", "M-12", "乙酰水杨酸", 3),
    ("h3", "0017", "acetylsalicylic acid", 1),
    ("h3", "ASA81", "Acetylsalicylic acid 81 mg", 1),
    ("h4", "py-1", "asipilin", 2),  # pinyin typed in Latin letters
    ("h4", "BAYA", "拜阿司匹灵", 1),  # brand-style spelling
    ("h4", "ASA", "ASA", 1),  # abbreviation: no candidate, corrected
]


def _bundle(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for r in entries
        ],
    }


def test_twelve_spellings_of_aspirin_become_one_standard_code(repo: Repository) -> None:
    client = make_app(repo)
    load_atc_system(client)
    orgs = sorted({s[0] for s in SPELLINGS})
    write_patients(client, *[(f"p-{o}", o) for o in orgs])
    # Each institution sends its records in one transaction, as a feed would.
    for org in orgs:
        records = [
            medication_request(f"p-{org}", org, code, text)
            for o, code, text, n in SPELLINGS
            if o == org
            for _ in range(n)
        ]
        assert client.post("/fhir", json=_bundle(records)).status_code == 200

    # The queue: every spelling, most records first, with totals per institution.
    queue = client.get("/api/terminology/unmapped?_count=100").json()
    assert queue["total"] == 12
    assert [(c["code"], c["records"]) for c in queue["codes"][:3]] == [
        ("A001", 5),
        ("aspirin", 4),
        ("M-12", 3),
    ]
    assert {i["institution"]: i["records"] for i in queue["institutions"]} == {
        "Organization/h1": 8,
        "Organization/h2": 6,
        "Organization/h3": 5,
        "Organization/h4": 4,
    }
    assert client.get("/api/terminology/unmapped?institution=Organization/h4").json()["total"] == 3

    accepted = corrected = 0
    hows: dict[str, str] = {}
    for org, code, text, n in SPELLINGS:
        institution = f"Organization/{org}"
        proposal = client.get(
            "/api/terminology/unmapped/candidates",
            params={
                "institution": institution,
                "system": drug_system(org),
                "code": code,
                "target": ATC,
                "limit": "3",
            },
        ).json()
        assert proposal["local"]["names"][0] == text
        top = proposal["candidates"][0] if proposal["candidates"] else None
        if top is not None:
            assert 0.6 <= top["confidence"] <= 1.0 and top["reasons"]
        how = "accepted" if top is not None and top["code"] in ASPIRIN_CODES else "corrected"
        hows[code] = how
        accepted += how == "accepted"
        corrected += how == "corrected"
        target = top["code"] if how == "accepted" else ASPIRIN
        r = client.post(
            "/api/terminology/mappings",
            json={
                "institution": institution,
                "system": drug_system(org),
                "code": code,
                "target": {"system": ATC, "code": target},
                "how": how,
            },
        )
        assert r.status_code == 201, r.text
        decided = r.json()
        assert decided["conceptMap"] == f"ConceptMap/ingest-{org}"
        assert decided["affectedRecords"] == n
        assert decided["retranslated"] == {
            "records": n,
            "rewritten": n,
            "gone": 0,
            "failed": 0,
            "remaining": 0,
        }
    # Most spellings are found by the fuzzy match; the rest the operator corrects.
    assert accepted >= 6 and accepted + corrected == 12

    assert client.get("/api/terminology/unmapped").json()["total"] == 0
    assert client.get("/api/terminology/unmapped?include_mapped=true").json()["total"] == 0
    # Every stored record now carries the standard code after its untouched original.
    either = ",".join(f"{ATC}|{c}" for c in ASPIRIN_CODES)
    found = client.get(f"/fhir/MedicationRequest?code={either}&_count=100").json()
    assert found["total"] == sum(n for *_, n in SPELLINGS)
    for entry in found["entry"]:
        resource = entry["resource"]
        assert codings(resource)[1][0] == ATC and codings(resource)[1][1] in ASPIRIN_CODES
        assert codings(resource)[0][0].startswith("urn:huitong:org:h")
        assert resource["meta"]["versionId"] == "2"
    # One ingest ConceptMap per institution, three decisions each, with what the operator did.
    cm = client.get("/fhir/ConceptMap/ingest-h4").json()
    elements = {e["code"]: e for e in cm["group"][0]["element"]}
    assert set(elements) == {"py-1", "BAYA", "ASA"}
    for code, element in elements.items():
        said = "确认" if hows[code] == "accepted" else "修正"
        assert said in element["target"][0]["comment"]

    # New records arrive translated, and nothing new is queued.
    new = client.post(
        "/fhir/MedicationRequest", json=medication_request("p-h2", "h2", "X9", "asprin")
    ).json()
    assert codings(new)[0] == (drug_system("h2"), "X9")
    assert codings(new)[1][0] == ATC and codings(new)[1][1] in ASPIRIN_CODES
    assert client.get("/api/terminology/unmapped").json()["total"] == 0


def test_a_decision_without_retranslation_reports_the_records_left(repo: Repository) -> None:
    client = make_app(repo)
    load_atc_system(client)
    write_patients(client, ("pa", "h1"))
    for _ in range(2):
        client.post(
            "/fhir/MedicationRequest", json=medication_request("pa", "h1", "A001", "阿司匹林")
        )
    r = client.post(
        "/api/terminology/mappings",
        json={
            "institution": "Organization/h1",
            "system": drug_system("h1"),
            "code": "A001",
            "target": {"system": ATC, "code": "B01AC06"},
            "retranslate": False,
        },
    )
    assert r.status_code == 201 and r.json()["affectedRecords"] == 2
    assert "retranslated" not in r.json()
    # Mapped now, so out of the default queue, but listed on request with its records.
    assert client.get("/api/terminology/unmapped").json()["total"] == 0
    listed = client.get("/api/terminology/unmapped?include_mapped=true").json()["codes"]
    assert [(c["code"], c["records"], c["mapped"]) for c in listed] == [("A001", 2, True)]
    done = client.post(
        "/api/terminology/retranslate",
        json={
            "institution": "Organization/h1",
            "system": drug_system("h1"),
            "code": "A001",
            "limit": 1,
        },
    ).json()
    assert done == {"records": 1, "rewritten": 1, "gone": 0, "failed": 0, "remaining": 1}
    # A record deleted meanwhile is dropped from the queue, not rewritten.
    left = repo.query("SELECT res_id FROM terminology_unmapped")[0][0]
    client.delete(f"/fhir/MedicationRequest/{left}")
    done = client.post(
        "/api/terminology/retranslate",
        json={"institution": "Organization/h1", "system": drug_system("h1"), "code": "A001"},
    ).json()
    assert done == {"records": 1, "rewritten": 0, "gone": 1, "failed": 0, "remaining": 0}


def test_a_region_wide_decision_serves_every_institution(repo: Repository) -> None:
    client = make_app(repo)
    load_atc_system(client)
    write_patients(client, ("pa", "h1"), ("pb", "h2"))
    shared = "urn:huitong:region:codesystem:drug"
    for pid, org in (("pa", "h1"), ("pb", "h2")):
        body = medication_request(pid, org, "ASP", "阿司匹林")
        body["medicationCodeableConcept"]["coding"][0]["system"] = shared
        client.post("/fhir/MedicationRequest", json=body)
    r = client.post(
        "/api/terminology/mappings",
        json={
            "institution": "region",
            "system": shared,
            "code": "ASP",
            "target": {"system": ATC, "code": ASPIRIN},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["conceptMap"] == "ConceptMap/ingest-region"
    assert r.json()["retranslated"]["rewritten"] == 2
    assert client.get(f"/fhir/MedicationRequest?code={ATC}|{ASPIRIN}").json()["total"] == 2
