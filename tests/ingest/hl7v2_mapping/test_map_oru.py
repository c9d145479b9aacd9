"""ORU^R01: DiagnosticReport and Observations — values, units, ranges, flags, statuses."""

from __future__ import annotations

import pytest
from v2map_helpers import CTX, only, parse_text, resources, sample

from huitong.ingest.hl7v2.mapping import MappingError, map_message

_HEAD = (
    "MSH|^~\\&|LIS|H1|HIE|R|20260101120000+0800||ORU^R01|L1|P|2.5.1\r"
    "PID|1||MRN9^^^H1^MR||Zhao^Min||19700101|F\r"
    "OBR|1|P100^HIS|F200^LIS|24331-1^Lipid panel^LN|||20260101083000|||||||||||||||"
    "20260101110000||CH|{status}\r"
)


def _oru(*obx: str, status: str = "F") -> dict:
    text = _HEAD.format(status=status) + "".join(o + "\r" for o in obx)
    return map_message(parse_text(text), CTX).bundle


def test_cbc_sample_values() -> None:
    bundle = map_message(sample("LRI_2.0-NG_CBC_Typ_Message.hl7"), CTX).bundle
    report = only(bundle, "DiagnosticReport")
    assert report["status"] == "final"
    assert report["code"]["coding"][0] == {
        "system": "http://loinc.org", "code": "57021-8",
        "display": "CBC W Auto Differential panel in Blood"}
    observations = resources(bundle, "Observation")
    assert len(report["result"]) == len(observations) == 28
    rbc = observations[0]
    assert rbc["code"]["coding"][0]["code"] == "26453-1"
    assert rbc["valueQuantity"] == {"value": 4.41, "unit": "million per microliter",
                                    "system": "http://unitsofmeasure.org", "code": "10*6/uL"}
    assert rbc["referenceRange"][0] == {
        "low": {"value": 4.3, "unit": "million per microliter",
                "system": "http://unitsofmeasure.org", "code": "10*6/uL"},
        "high": {"value": 6.2, "unit": "million per microliter",
                 "system": "http://unitsofmeasure.org", "code": "10*6/uL"},
        "text": "4.3 to 6.2"}
    assert rbc["status"] == "final"
    assert rbc["effectiveDateTime"] == "2011-01-03T14:34:28-08:00"
    hgb = observations[1]
    assert hgb["interpretation"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "code": "L"}
    specimen = only(bundle, "Specimen")
    assert rbc["specimen"]["reference"] == report["specimen"][0]["reference"]
    assert specimen["type"]["coding"][0]["code"]


@pytest.mark.parametrize(("obx", "element", "expected"), [
    ("OBX|1|NM|2093-3^Cholesterol^LN||5.2|mmol/L^^UCUM|3.1-5.7|N|||F",
     "valueQuantity", {"value": 5.2, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                       "code": "mmol/L"}),
    ("OBX|1|NM|8480-6^SBP^LN||120|mmHg|||||F",
     "valueQuantity", {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                       "code": "mm[Hg]"}),
    ("OBX|1|NM|X1^Local thing^L||7|widgets|||||F",
     "valueQuantity", {"value": 7, "unit": "widgets"}),
    ("OBX|1|SN|2345-7^Glucose^LN||<^3.0|mmol/L|||||F",
     "valueQuantity", {"value": 3.0, "comparator": "<", "unit": "mmol/L",
                       "system": "http://unitsofmeasure.org", "code": "mmol/L"}),
    ("OBX|1|SN|5334-2^Titer^LN||^1^:^128||||||F",
     "valueRatio", {"numerator": {"value": 1}, "denominator": {"value": 128}}),
    ("OBX|1|SN|X2^Range^L||^10^-^20||||||F",
     "valueRange", {"low": {"value": 10}, "high": {"value": 20}}),
    ("OBX|1|ST|X3^Comment^L||looks fine||||||F", "valueString", "looks fine"),
    ("OBX|1|TX|X4^Text^L||line one~line two||||||F", "valueString", "line one\nline two"),
    ("OBX|1|CWE|600-7^Culture^LN||3092008^Staphylococcus aureus^SCT||||||F",
     "valueCodeableConcept", {"coding": [{"system": "http://snomed.info/sct",
                                          "code": "3092008",
                                          "display": "Staphylococcus aureus"}]}),
    ("OBX|1|DT|X5^Date^L||20250304||||||F", "valueDateTime", "2025-03-04"),
    ("OBX|1|TS|X6^Time stamp^L||202503041530||||||F", "valueDateTime",
     "2025-03-04T15:30:00+08:00"),
    ("OBX|1|TM|X7^Time^L||1530||||||F", "valueTime", "15:30:00"),
])
def test_value_types(obx: str, element: str, expected: object) -> None:
    observation = only(_oru(obx), "Observation")
    assert observation[element] == expected


@pytest.mark.parametrize(("flag", "status"), [
    ("F", "final"), ("C", "corrected"), ("P", "preliminary"), ("X", "cancelled"),
    ("D", "entered-in-error"), ("R", "preliminary"),
])
def test_obx11_sets_observation_status(flag: str, status: str) -> None:
    obx = f"OBX|1|NM|2093-3^Cholesterol^LN||5.2|mmol/L|||||{flag}"
    assert only(_oru(obx), "Observation")["status"] == status


@pytest.mark.parametrize(("flag", "status"), [
    ("F", "final"), ("C", "corrected"), ("P", "preliminary"), ("A", "partial"),
    ("X", "cancelled"), ("I", "registered"),
])
def test_obr25_sets_report_status(flag: str, status: str) -> None:
    bundle = _oru("OBX|1|NM|2093-3^Cholesterol^LN||5.2|mmol/L|||||F", status=flag)
    assert only(bundle, "DiagnosticReport")["status"] == status


def test_one_sided_reference_range_and_identity() -> None:
    bundle = _oru("OBX|1|NM|2093-3^Chol^LN||5.2|mmol/L|<5.2|H|||F",
                  "OBX|2|NM|2085-9^HDL^LN||1.1|mmol/L|>1.0|N|||F")
    chol, hdl = resources(bundle, "Observation")
    assert chol["referenceRange"][0]["high"]["value"] == 5.2
    assert "low" not in chol["referenceRange"][0]
    assert hdl["referenceRange"][0]["low"]["value"] == 1.0
    assert chol["identifier"][0]["value"].endswith("|P100/1")
    assert hdl["identifier"][0]["value"].endswith("|P100/2")
    report = only(bundle, "DiagnosticReport")
    assert [i["value"] for i in report["identifier"]] == ["P100", "F200"]
    assert report["issued"] == "2026-01-01T11:00:00+08:00"
    # the lab's patient is created only if registration has not already sent it
    patient_entry = next(e for e in bundle["entry"]
                         if e["resource"]["resourceType"] == "Patient")
    assert patient_entry["request"]["method"] == "POST"


def test_non_numeric_nm_is_a_data_type_error() -> None:
    with pytest.raises(MappingError) as info:
        _oru("OBX|1|NM|2093-3^Cholesterol^LN||high|mmol/L|||||F")
    assert (info.value.code, info.value.location) == (102, "OBX[1].5")
    assert "数字" in info.value.zh


def test_obx_without_obx3_is_left_out_with_a_warning() -> None:
    text = _HEAD.format(status="F") + "OBX|1|NM|||5|mmol/L|||||F\r" \
        "OBX|2|NM|2085-9^HDL^LN||1.1|mmol/L|||||F\r"
    result = map_message(parse_text(text), CTX)
    assert len(resources(result.bundle, "Observation")) == 1
    assert len(only(result.bundle, "DiagnosticReport")["result"]) == 1
    assert ("dropped", "OBX[1].3") in {(w.code, w.location) for w in result.warnings}
