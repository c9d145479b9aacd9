"""Birth-date and resident-ID comparators, and the record built from a FHIR Patient."""

from __future__ import annotations

from datetime import date

import pytest

from huitong.mpi.compare.dates import DATE_LEVELS, date_level
from huitong.mpi.compare.resident_id import RESIDENT_ID_LEVELS, compare_resident_id
from huitong.mpi.normalize.identifiers import ID_MEDICAL_INSURANCE, ID_RESIDENT
from huitong.mpi.record import record_from_patient
from huitong.mpi.resident_id import make_resident_id

RID = "11010519491231002X"


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("19900305", "19900305", "exact"),
        ("19900305", "19900503", "swap"),
        ("19900305", "19900306", "typo"),
        ("19900305", "19090305", "typo"),  # adjacent transposition
        ("19900305", "19901120", "year"),
        ("19900305", "19850305", "different"),
    ],
)
def test_date_levels(a: str, b: str, level: str) -> None:
    lv = date_level(a, b)
    assert lv is not None and DATE_LEVELS[lv] == level


def test_missing_date_is_missing() -> None:
    assert date_level("", "19900305") is None


def _rec(value: str | None, pid: str = "x"):
    ids = [] if value is None else [{"system": ID_RESIDENT, "value": value}]
    return record_from_patient({"resourceType": "Patient", "id": pid, "identifier": ids})


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        (RID, "11010519491231002x", "exact"),
        (RID, "110105491231002", "upgraded"),
        (RID, "110105194912310020", "typo"),  # check character mistyped
        (RID, "11010519491213002X", "typo"),  # two digits swapped
        (RID, "not a number", "invalid"),
        (RID, make_resident_id("110105", date(1949, 12, 31), 4), "different"),
    ],
)
def test_resident_id_levels(a: str, b: str, level: str) -> None:
    lv = compare_resident_id(_rec(a), _rec(b))
    assert lv is not None and RESIDENT_ID_LEVELS[lv] == level


def test_resident_id_missing_on_either_side() -> None:
    assert compare_resident_id(_rec(RID), _rec(None)) is None


def test_record_from_patient_reads_every_identifying_element() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"lastUpdated": "2026-01-02T03:04:05Z"},
        "identifier": [
            {"system": ID_RESIDENT, "value": "110105491231002", "use": "old"},
            {"system": ID_RESIDENT, "value": RID},
            {"system": ID_MEDICAL_INSURANCE, "value": "ab-123"},
            {"value": "no system, ignored"},
        ],
        "name": [{"family": "張", "given": ["偉"]}, {"text": "Old Name", "use": "old"}],
        "gender": "female",
        "birthDate": "1949-12-31",
        "telecom": [{"system": "phone", "value": "+86 138 1234 5678"},
                    {"system": "email", "value": "a@example.org"}],
        "address": [{"text": "北京市朝阳区建国路1号"}],
    }  # fmt: skip
    rec = record_from_patient(patient, source_org="rmyy")
    assert rec.source == "Patient/p1" and rec.source_org == "rmyy"
    assert rec.resident_id is not None and rec.resident_id.number == RID
    assert not rec.resident_id.upgraded_from_15  # the current number wins over use=old
    assert [(i.system, i.value) for i in rec.identifiers] == [(ID_MEDICAL_INSURANCE, "AB123")]
    assert [n.full for n in rec.names] == ["张伟"]
    assert rec.birth == "19491231" and rec.birth_date == date(1949, 12, 31)
    assert rec.sex == "female"
    assert [p.number for p in rec.phones] == ["13812345678"]
    assert rec.addresses[0].district == "朝阳区"
    assert rec.updated_at is not None and rec.updated_at.year == 2026


def test_record_keeps_an_invalid_id_as_text_for_the_typo_comparator() -> None:
    rec = _rec("110105194912310020")
    assert rec.resident_id is None and rec.resident_id_text == "110105194912310020"


def test_demo_region_patients_normalise() -> None:
    from huitong.demo.generate import generate_region

    bundles = generate_region(seed=3, residents=5)
    patients = [
        e["resource"] for b in bundles[1:] for e in b["entry"]
        if e["resource"]["resourceType"] == "Patient"
    ]  # fmt: skip
    assert len(patients) == 5
    for patient in patients:
        rec = record_from_patient(patient)
        assert rec.resident_id is not None
        assert rec.names and rec.names[0].script == "han"
        assert rec.birth_date == rec.resident_id.birth_date
