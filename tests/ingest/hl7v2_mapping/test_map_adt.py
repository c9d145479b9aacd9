"""ADT mapping: values from the shared samples, encounter status per trigger event, merges."""

from __future__ import annotations

import pytest
from v2map_helpers import CTX, only, parse_text, resources, sample

from huitong.ingest.hl7v2.mapping import MappingError, map_message


def _pv1(**fields: str) -> str:
    """A PV1 with fields given as ``f<n>=value``."""
    values = ["PV1"] + [""] * 45
    for key, value in fields.items():
        values[int(key[1:])] = value
    return "|".join(values).rstrip("|")


_PV1 = {"f1": "1", "f2": "I", "f3": "W1^101^2^H1", "f7": "D1^Wang^Fang",
        "f19": "V100^^^H1^VN", "f44": "20260101080000"}


def _adt(event: str, discharge: str = "", **extra: str) -> str:
    pv1 = _pv1(**{**_PV1, "f45": discharge, **extra})
    return (
        "MSH|^~\\&|HIS|H1|HIE|R|20260101120000+0800||ADT^" + event + "|C" + event
        + "|P|2.5\rEVN|" + event + "|20260101120000\r"
        "PID|1||MRN1^^^H1^MR||Li^Lei||19800101|M\r" + pv1 + "\r"
    )


def test_a01_patient_values() -> None:
    result = map_message(sample("ADT-A01-01.hl7"), CTX)
    patient = only(result.bundle, "Patient")
    assert patient["name"][0]["family"] == "EVERYMAN"
    assert patient["name"][0]["given"] == ["ADAM", "A"]
    assert patient["gender"] == "male"
    assert patient["birthDate"] == "1988-08-18"
    assert patient["identifier"][0]["value"] == "PATID1234"
    assert patient["address"][0]["city"] == "Ann Arbor"
    assert patient["maritalStatus"]["coding"][0]["code"] == "M"
    entry = next(e for e in result.bundle["entry"] if e["resource"] is patient)
    assert entry["request"]["method"] == "PUT"  # ADT is the demographic source
    assert entry["request"]["url"].startswith("Patient?identifier=")
    assert ("urn:huitong:org:org-1:mrn%3Atest1", "PATID1234") in result.patient_identifiers


def test_a01_encounter_values() -> None:
    bundle = map_message(sample("ADT-A01-01.hl7"), CTX).bundle
    encounter = only(bundle, "Encounter")
    assert encounter["status"] == "in-progress"
    assert encounter["class"]["code"] == "PRENC"  # PV1-2 P
    assert encounter["identifier"][0]["value"] == "40007716"
    assert encounter["serviceType"]["coding"][0]["code"] == "SUR"
    codes = [p["type"][0]["coding"][0]["code"] for p in encounter["participant"]]
    assert codes[:3] == ["ATND", "REF", "CON"]
    assert encounter["location"][0]["status"] == "active"
    patient_url = next(e["fullUrl"] for e in bundle["entry"]
                       if e["resource"]["resourceType"] == "Patient")
    assert encounter["subject"]["reference"] == patient_url
    assert len(resources(bundle, "Condition")) == 1
    assert encounter["diagnosis"][0]["condition"]["reference"].startswith("urn:uuid:")
    assert only(bundle, "AllergyIntolerance")["patient"] == encounter["subject"]


@pytest.mark.parametrize(("event", "discharge", "status", "class_code"), [
    ("A01", "", "in-progress", "IMP"),
    ("A02", "", "in-progress", "IMP"),
    ("A03", "20260105100000", "finished", "IMP"),
    ("A04", "", "arrived", "IMP"),
    ("A05", "", "planned", "IMP"),
    ("A08", "", "in-progress", "IMP"),  # derived from the admit date
    ("A08", "20260105100000", "finished", "IMP"),
    ("A11", "", "entered-in-error", "IMP"),
    ("A13", "", "in-progress", "IMP"),
    ("A27", "", "cancelled", "IMP"),
])
def test_encounter_status_follows_the_event(event: str, discharge: str, status: str,
                                            class_code: str) -> None:
    bundle = map_message(parse_text(_adt(event, discharge)), CTX).bundle
    encounter = only(bundle, "Encounter")
    assert encounter["status"] == status
    assert encounter["class"]["code"] == class_code
    assert encounter["identifier"][0]["value"] == "V100"
    assert encounter["period"]["start"] == "2026-01-01T08:00:00+08:00"
    if discharge:
        assert encounter["period"]["end"] == "2026-01-05T10:00:00+08:00"
    assert encounter["participant"][0]["individual"]["display"] == "Fang Wang"


@pytest.mark.parametrize("event", ["A28", "A31"])
def test_person_events_touch_only_the_patient(event: str) -> None:
    bundle = map_message(parse_text(_adt(event)), CTX).bundle
    assert resources(bundle, "Encounter") == []
    assert only(bundle, "Patient")["name"][0]["family"] == "Li"


def test_a02_keeps_the_prior_location_as_completed() -> None:
    text = _adt("A02", f6="W0^001^1^H1")
    encounter = only(map_message(parse_text(text), CTX).bundle, "Encounter")
    statuses = [loc["status"] for loc in encounter["location"]]
    assert statuses == ["active", "completed"]


def test_a40_is_a_merge_request_and_rewrites_no_patient() -> None:
    result = map_message(sample("ADT-A40-01.hl7"), CTX)
    assert result.merge is not None
    assert result.merge.surviving == result.patient_identifiers[0] or (
        result.merge.surviving in result.patient_identifiers)
    assert result.merge.merged and result.merge.merged[0] != result.merge.surviving
    assert "A40" in result.merge.reason
    assert set(result.merge.merged) <= set(result.patient_identifiers)
    entries = result.bundle["entry"]
    assert [e["resource"]["resourceType"] for e in entries] == ["Patient"]
    assert entries[0]["request"]["method"] == "POST"  # created only if absent
    assert "ifNoneExist" in entries[0]["request"]


def test_missing_pid_is_a_content_error() -> None:
    text = "MSH|^~\\&|HIS|H1|HIE|R|20260101||ADT^A01|X1|P|2.5\rEVN|A01|20260101\rPV1|1|I\r"
    with pytest.raises(MappingError) as info:
        map_message(parse_text(text), CTX)
    assert info.value.code == 100
    assert info.value.zh


def test_empty_pid3_is_a_required_field_error() -> None:
    text = "MSH|^~\\&|HIS|H1|HIE|R|20260101||ADT^A01|X1|P|2.5\rPID|1||||Li^Lei\r"
    with pytest.raises(MappingError) as info:
        map_message(parse_text(text), CTX)
    assert (info.value.code, info.value.location) == (101, "PID[1].3")
