"""The identity service in the write pipeline, on SQLite and PostgreSQL: automatic links,
golden records, the review queue, operator link/unlink/merge/certainly-not with history,
deletes, and that conditional writes keyed on source identifiers stay unambiguous."""

from __future__ import annotations

from typing import Any

import pytest

from huitong.fhir.errors import FhirError
from huitong.fhir.search.parse import parse_search
from huitong.mpi.resident_id import make_resident_id
from huitong.mpi.service import GOLDEN_TAG, IdentityService, is_golden
from huitong.store import Repository

RID = "urn:oid:2.16.156.10011.1.3"


def patient(pid: str, org: str, *, name: str = "张伟", birth: str = "1970-03-05",
            rid: str | None = None, phone: str | None = None, gender: str = "male",
            mrn: str | None = None) -> dict[str, Any]:
    family, given = name[0], name[1:]
    p: dict[str, Any] = {
        "resourceType": "Patient", "id": pid, "gender": gender, "birthDate": birth,
        "name": [{"text": name, "family": family, "given": [given]}],
        "managingOrganization": {"reference": f"Organization/{org}"},
        "identifier": [{"system": f"urn:huitong:org:{org}:mrn", "value": mrn or pid}],
    }
    if rid:
        p["identifier"].append({"system": RID, "value": rid})
    if phone:
        p["telecom"] = [{"system": "phone", "value": phone}]
    return p


ZHANG = make_resident_id("110105", __import__("datetime").date(1970, 3, 5), 13)
LI = make_resident_id("110105", __import__("datetime").date(1985, 7, 9), 22)


def put(repo: Repository, *patients: dict[str, Any]) -> None:
    with repo.transaction() as tx:
        for p in patients:
            tx.update(p)


def test_same_resident_at_two_institutions_gets_one_golden_record(repo, mpi):
    put(repo, patient("a1", "county", rid=ZHANG, phone="13800138000"))
    put(repo, patient("b1", "clinic", name="章伟", rid=ZHANG))  # homophone surname
    golden = mpi.golden_of("a1")
    assert golden is not None and mpi.golden_of("b1") == golden
    assert mpi.sources_of(golden) == ["a1", "b1"]
    record = repo.read("Patient", golden).resource
    assert is_golden(record)
    assert {link["other"]["reference"] for link in record["link"]} == {"Patient/a1", "Patient/b1"}
    assert record["identifier"] == [{"system": "urn:huitong:mpi:golden", "value": golden}]
    assert record["telecom"][0]["value"] == "13800138000"  # survivorship: union of telecoms
    actions = [h["action"] for h in mpi.history("Patient/b1")]
    assert actions == ["link"]


def test_different_people_get_different_golden_records(repo, mpi):
    put(repo, patient("a1", "county", rid=ZHANG), patient("a2", "county", name="李娜",
        birth="1985-07-09", rid=LI, gender="female"))
    assert mpi.golden_of("a1") != mpi.golden_of("a2")


def test_demographics_alone_never_merge_automatically(repo, mpi):
    put(repo, patient("a1", "county", rid=ZHANG, phone="13800138000"))
    # same name, birth date and sex but no ID and another phone: many people look like this
    put(repo, patient("c1", "clinic", phone="13911112222"))
    assert mpi.golden_of("c1") != mpi.golden_of("a1")
    items, total = mpi.review_queue()
    assert total == 1
    item = items[0]
    assert item.source == "Patient/c1" and item.golden == mpi.golden_of("a1")
    assert item.grade in ("probable", "possible") and 0 < item.probability < 1
    assert item.evidence  # the field-by-field evidence a reviewer sees
    mpi.decide_review(item.id, accept=True, by="op-li", reason="same phone owner confirmed")
    assert mpi.golden_of("c1") == mpi.golden_of("a1")
    with pytest.raises(FhirError):
        mpi.decide_review(item.id, accept=True, by="op-li", reason="again")


def test_unlink_is_remembered_as_certainly_not(repo, mpi):
    put(repo, patient("a1", "county", rid=ZHANG), patient("b1", "clinic", rid=ZHANG))
    golden = mpi.golden_of("a1")
    with pytest.raises(FhirError):
        mpi.unlink("Patient/b1", by="op", reason=" ")
    new = mpi.unlink("Patient/b1", by="op-wang", reason="twin brother, confirmed by phone")
    assert mpi.golden_of("b1") == new != golden
    # the source is updated by its institution: the operator's decision stands
    put(repo, patient("b1", "clinic", rid=ZHANG, phone="13700000000"))
    assert mpi.golden_of("b1") == new
    with pytest.raises(FhirError):
        mpi.link("Patient/b1", golden, by="op", reason="undo?")
    assert [h["action"] for h in mpi.history("Patient/b1")][-2:] == ["link", "unlink"]


def test_merge_and_delete(repo, mpi):
    put(repo, patient("a1", "county", rid=ZHANG), patient("x1", "clinic", name="李娜",
        birth="1985-07-09", rid=LI, gender="female"))
    g1, g2 = mpi.golden_of("a1"), mpi.golden_of("x1")
    mpi.merge(g2, g1, by="op", reason="registration error at the clinic")
    assert sorted(mpi.sources_of(g1)) == ["a1", "x1"]
    assert repo.read("Patient", g1).resource["link"]
    with pytest.raises(FhirError) as gone:
        repo.read("Patient", g2)
    assert gone.value.category.value == "gone"
    with repo.transaction() as tx:
        tx.delete("Patient", "x1")
    assert mpi.sources_of(g1) == ["a1"]


def test_conditional_write_by_source_identifier_stays_unambiguous(repo, mpi):
    put(repo, patient("a1", "county", rid=ZHANG, mrn="M-1"),
        patient("b1", "clinic", rid=ZHANG, mrn="M-2"))
    page = repo.search(parse_search("Patient", [("identifier", "urn:huitong:org:county:mrn|M-1")]))
    assert [r.id for r in page.matches] == ["a1"]
    golden_only = repo.search(parse_search("Patient", [("_tag", f"{GOLDEN_TAG['system']}|golden")]))
    assert len(golden_only.matches) == 1


def test_match_scores_a_record_against_golden_records(repo, mpi):
    put(repo, patient("a1", "county", rid=ZHANG, phone="13800138000"))
    hits = mpi.match(patient("q", "elsewhere", rid=ZHANG))
    assert hits and hits[0][0] == mpi.golden_of("a1") and hits[0][2] == "certain"
    assert 0.9 < hits[0][1] <= 1.0
    assert mpi.match(patient("q", "elsewhere", name="王芳", birth="2001-01-01",
                             gender="female")) == []


def test_training_on_the_regions_records_replaces_the_default_model(repo, mpi):
    from huitong.mpi.synth import generate_people, noisy_patients

    people = generate_people(60, seed=3)
    with repo.transaction() as tx:
        for n, source in enumerate(noisy_patients(people, seed=3)):
            tx.update({**source.patient, "id": f"s{n}"})
    default = mpi.model.to_json()
    model, records, pairs = mpi.train()
    assert records >= 60 and pairs > 0
    assert model.to_json() != default
    fresh = IdentityService(repo, clock=repo.clock, new_id=lambda: "unused")
    assert fresh.model.to_json() == model.to_json()  # the stored model is the one in use
