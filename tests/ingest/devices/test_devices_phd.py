"""PHD-style Bundles: the same Observations as gateway JSON, de-duplicated across both."""

from __future__ import annotations

import json
import sys
from typing import Any

from fhir_test_client import FhirServer
from huitong.ingest.devices import convert_gateway_payload, convert_phd_bundle
from huitong.ingest.feeds import Reason

MDC = "urn:iso:std:iso:11073:10101"
EUI64 = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"
RESIDENT = "urn:oid:2.16.156.10011.1.3"


def q(value: float, code: str) -> dict[str, Any]:
    return {"value": value, "unit": code, "system": "http://unitsofmeasure.org", "code": code}


def coding(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {"coding": [{"system": s, "code": c} for s, c in pairs]}


def phd_bundle(time: str = "2024-03-05T08:30:00+08:00") -> dict[str, Any]:
    def obs(n: int, code: dict[str, Any], **rest: Any) -> dict[str, Any]:
        return {"fullUrl": f"urn:uuid:00000000-0000-0000-0000-00000000000{n}", "resource": {
            "resourceType": "Observation", "status": "final", "code": code,
            "subject": {"reference": "urn:uuid:00000000-0000-0000-0000-0000000000aa"},
            "device": {"reference": "Device/phd-711000FEFF5F49B0"},
            "effectiveDateTime": time, **rest}, "request": {"method": "POST", "url": "Observation"}}

    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:00000000-0000-0000-0000-0000000000aa", "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": RESIDENT, "value": "110101196003050012"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "http://gateway.example/fhir/Device/phd-711000FEFF5F49B0", "resource": {
            "resourceType": "Device", "id": "phd-711000FEFF5F49B0",
            "identifier": [{"system": EUI64, "value": "71-10-00-FE-FF-5F-49-B0"}],
            "manufacturer": "OMRON", "serialNumber": "20150200002A", "modelNumber": "HEM-9200T"},
         "request": {"method": "PUT", "url": "Device/phd-711000FEFF5F49B0"}},
        obs(1, coding((MDC, "150020"), ("http://loinc.org", "85354-9")), component=[
            {"code": coding((MDC, "150021")), "valueQuantity": q(116, "mm[Hg]")},
            {"code": coding((MDC, "150022")), "valueQuantity": q(71, "mm[Hg]")},
            {"code": coding((MDC, "150023")), "valueQuantity": q(86, "mm[Hg]")}]),
        obs(2, coding((MDC, "149546")), valueQuantity=q(64, "/min")),
        obs(3, coding((MDC, "67975")), valueDateTime=time),  # coincident time stamp
        obs(4, coding((MDC, "150456")), valueQuantity=q(130, "%")),  # implausible SpO2
    ]}


def test_phd_bundle_is_normalised() -> None:
    conv = convert_phd_bundle(phd_bundle())
    assert {(p.row, p.reason, p.severity) for p in conv.problems} == {
        (5, Reason.UNKNOWN_MEASUREMENT, "warning"), (6, Reason.IMPLAUSIBLE_VALUE, "error")}
    [implausible] = [p for p in conv.problems if p.row == 6]
    assert implausible.pointer == "/entry/5/resource/valueQuantity/value"
    resources = [e["resource"] for e in conv.entries]
    device = resources[0]
    assert device["identifier"] == [{"system": EUI64, "value": "71-10-00-FE-FF-5F-49-B0"}]
    assert device["modelNumber"] == "HEM-9200T"
    panel, hr = resources[1], resources[2]
    assert [c["code"]["coding"][0]["code"] for c in panel["component"]] == [
        "8480-6", "8462-4", "8478-0"]
    assert panel["code"]["coding"][0]["code"] == "85354-9"
    assert hr["code"]["coding"][0]["code"] == "8867-4"
    assert panel["subject"]["reference"] == f"Patient?identifier={RESIDENT}|110101196003050012"


def test_unresolvable_device_or_patient_is_a_problem() -> None:
    b = phd_bundle()
    b["entry"][2]["resource"]["device"] = {"reference": "Device/unknown"}
    b["entry"][3]["resource"]["subject"] = {"reference": "Group/1"}
    conv = convert_phd_bundle(b)
    fields = {(p.row, p.field) for p in conv.problems if p.reason is Reason.MISSING_VALUE}
    assert fields == {(3, "device"), (4, "subject")}
    assert convert_phd_bundle({"resourceType": "Patient"}).problems[0].reason is Reason.BAD_RECORD


def test_phd_and_gateway_copies_of_a_reading_are_one(fhir: FhirServer) -> None:
    fhir.create({"resourceType": "Patient",
                 "identifier": [{"system": RESIDENT, "value": "110101196003050012"}]})
    fhir.post_bundle(convert_phd_bundle(phd_bundle()).bundle)
    fhir.post_bundle(convert_phd_bundle(phd_bundle(time="2024-03-05T00:30:00Z")).bundle)
    gateway = {"device": {"serial": "71-10-00-FE-FF-5F-49-B0", "system": EUI64},
               "patient": {"system": RESIDENT, "value": "110101196003050012"},
               "time": "2024-03-05T08:30:00+08:00",
               "measurements": [{"type": "systolic", "value": 116, "unit": "mm[Hg]"},
                                {"type": "heart-rate", "value": 64, "unit": "/min"}]}
    fhir.post_bundle(convert_gateway_payload(gateway).bundle)
    assert fhir.count("Device") == 1
    assert fhir.count("Observation") == 2


def test_public_surface_is_explicit() -> None:
    import huitong.ingest.devices as devices

    public = {n for n, v in vars(devices).items()
              if not n.startswith("_") and not isinstance(v, type(sys))}
    assert set(devices.__all__) == public


def test_nulls_where_lists_belong_are_problems_not_crashes() -> None:
    b = phd_bundle()
    b["entry"][2]["resource"]["code"] = {"coding": None}
    b["entry"][3]["resource"]["component"] = None
    b["entry"][1]["resource"]["identifier"] = None  # the device keeps its serial number
    b["entry"][0]["resource"]["identifier"] = None  # the patient cannot be identified
    conv = convert_phd_bundle(b)
    assert {(p.reason, p.field) for p in conv.problems if p.severity == "error"} >= {
        (Reason.MISSING_VALUE, "subject")}
    assert convert_phd_bundle({"resourceType": "Bundle", "entry": None}).entries == []


def test_one_entry_point_tells_the_formats_apart() -> None:
    from huitong.ingest.devices import convert_device_payload

    phd = convert_device_payload(json.dumps(phd_bundle()).encode())
    assert phd.entries == convert_phd_bundle(phd_bundle()).entries
    gateway = {"device": {"serial": "S1"}, "patient": {"system": RESIDENT, "value": "1"},
               "time": "2024-03-05T08:30:00+08:00",
               "measurements": [{"type": "spo2", "value": 98, "unit": "%"}]}
    assert convert_device_payload(json.dumps(gateway)).entries == \
        convert_gateway_payload(gateway).entries
    assert convert_device_payload(b"\xff").problems[0].reason is Reason.BAD_RECORD
