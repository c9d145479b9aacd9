"""Gateway JSON readings: codes, units, plausibility, de-duplication, and the real server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fhir_test_client import FhirServer
from huitong.fhir.validation import validate_resource
from huitong.ingest.devices import READING_SYSTEM, DeviceContext, convert_gateway_payload
from huitong.ingest.feeds import Reason

RESIDENT = "urn:oid:2.16.156.10011.1.3"
MDC = "urn:iso:std:iso:11073:10101"


def reading(time: str = "2024-03-05T08:30:00+08:00", serial: str = "BPM-0001",
            patient: str = "110101196003050012",
            measures: dict[str, tuple[Any, ...]] | None = None) -> dict[str, Any]:
    ms = measures or {"systolic": (128, "mmHg"), "diastolic": (82, "mmHg"),
                      "heart-rate": (72, "bpm")}
    return {
        "device": {"serial": serial, "type": "blood-pressure-monitor", "manufacturer": "康健",
                   "model": "KJ-100"},
        "patient": {"system": RESIDENT, "value": patient},
        "time": time,
        "measurements": [{"type": k.replace("_", "-"), "value": v[0], "unit": v[1],
                          **({"sample": v[2]} if len(v) > 2 else {})} for k, v in ms.items()],
    }


def by_code(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for e in bundle.get("entry", []):
        r = e["resource"]
        if r["resourceType"] == "Observation":
            out[r["code"]["coding"][0]["code"]] = r
    return out


def test_blood_pressure_reading_becomes_panel_heart_rate_and_device() -> None:
    conv = convert_gateway_payload(json.dumps(reading()).encode())
    assert conv.problems == [] and conv.accepted == 1
    entries = conv.entries
    assert [e["resource"]["resourceType"] for e in entries] == ["Device", "Observation",
                                                               "Observation"]
    device = entries[0]
    assert device["request"] == {"method": "POST", "url": "Device",
                                 "ifNoneExist": "identifier=urn:huitong:device-serial|BPM-0001"}
    obs = by_code(conv.bundle)
    panel = obs["85354-9"]
    assert panel["code"]["coding"][1] == {"system": MDC, "code": "150020",
                                          "display": "MDC_PRESS_BLD_NONINV"}
    comps = {c["code"]["coding"][0]["code"]: c for c in panel["component"]}
    assert comps["8480-6"]["valueQuantity"]["value"] == 128
    assert comps["8480-6"]["code"]["coding"][1]["code"] == "150021"
    assert comps["8462-4"]["valueQuantity"]["code"] == "mm[Hg]"
    assert comps["8462-4"]["code"]["coding"][1]["code"] == "150022"
    hr = obs["8867-4"]
    assert hr["valueQuantity"] == {"value": 72, "unit": "/min",
                                   "system": "http://unitsofmeasure.org", "code": "/min"}
    assert hr["code"]["coding"][1]["code"] == "147842"
    for o in (panel, hr):
        assert o["category"][0]["coding"][0]["code"] == "vital-signs"
        assert o["subject"]["reference"] == f"Patient?identifier={RESIDENT}|110101196003050012"
        assert o["device"]["reference"] == device["fullUrl"]
        assert o["effectiveDateTime"] == "2024-03-05T08:30:00+08:00"
        ident = o["identifier"][0]
        assert ident["system"] == READING_SYSTEM
        assert ident["value"].startswith("BPM-0001/20240305T003000Z/")
        validate_resource(o)
    validate_resource(device["resource"])


def test_spo2_weight_and_glucose_codes_and_unit_conversion() -> None:
    conv = convert_gateway_payload(reading(measures={
        "spo2": (97, "%"), "body-weight": (130, "斤"),
        "glucose": (108, "mg/dL", "capillary-whole-blood")}))
    obs = by_code(conv.bundle)
    assert conv.problems == []
    spo2 = obs["59408-5"]
    assert [c["code"] for c in spo2["code"]["coding"]] == ["59408-5", "2708-6", "150456"]
    assert obs["29463-7"]["valueQuantity"]["value"] == 65.0
    assert obs["29463-7"]["code"]["coding"][1]["code"] == "188736"
    glucose = obs["41653-7"]
    assert glucose["category"][0]["coding"][0]["code"] == "laboratory"
    assert glucose["code"]["coding"][1]["code"] == "160184"
    assert glucose["valueQuantity"]["code"] == "mg/dL"
    mmol = by_code(convert_gateway_payload(reading(measures={"glucose": (6.1, "mmol/L")})).bundle)
    assert "15074-8" in mmol
    venous = by_code(convert_gateway_payload(reading(measures={"glucose": (110, "mg/dl", "blood")})).bundle)
    assert [c["code"] for c in venous["2339-0"]["code"]["coding"]] == ["2339-0"]
    kpa = by_code(convert_gateway_payload(reading(measures={"systolic": (16, "kPa")})).bundle)
    assert kpa["85354-9"]["component"][0]["valueQuantity"]["value"] == 120.0


def test_implausible_and_unknown_values_are_reported_not_dropped_silently() -> None:
    conv = convert_gateway_payload(reading(measures={
        "systolic": (1200, "mmHg"), "diastolic": (80, "mmHg"), "spo2": (0, "%"),
        "temperature": (36.5, "Cel"), "heart_rate": (72, "mmHg")}))
    got = {(p.reason, p.pointer) for p in conv.problems}
    assert got == {
        (Reason.IMPLAUSIBLE_VALUE, "/measurements/0/value"),
        (Reason.IMPLAUSIBLE_VALUE, "/measurements/2/value"),
        (Reason.UNKNOWN_MEASUREMENT, "/measurements/3/type"),
        (Reason.BAD_UNIT, "/measurements/4/unit"),
    }
    for p in conv.problems:
        assert p.row == 1 and p.en and p.zh
    [panel] = by_code(conv.bundle).values()  # only the plausible diastolic is kept
    assert [c["code"]["coding"][0]["code"] for c in panel["component"]] == ["8462-4"]


def test_bad_readings_in_a_batch_payload() -> None:
    payload = {"readings": [reading(), {"device": {}, "time": "yesterday"}, "x",
                            reading(time="2024-03-05T09:00:00")]}
    conv = convert_gateway_payload(payload)
    assert conv.accepted == 2 and conv.records == 4
    reasons = {(p.row, p.reason, p.pointer) for p in conv.problems}
    assert (2, Reason.MISSING_VALUE, "/readings/1/device/serial") in reasons
    assert (2, Reason.BAD_DATE, "/readings/1/time") in reasons
    assert (3, Reason.NOT_AN_OBJECT, "/readings/2") in reasons
    times = {o["effectiveDateTime"] for o in by_code(conv.bundle).values()}
    assert "2024-03-05T09:00:00+08:00" in times  # no offset: the channel's (+08:00)
    assert convert_gateway_payload(b"{not json").problems[0].reason is Reason.BAD_RECORD


def test_same_reading_in_another_offset_has_the_same_identity() -> None:
    a = by_code(convert_gateway_payload(reading()).bundle)
    b = by_code(convert_gateway_payload(reading(time="2024-03-05T00:30:00Z")).bundle)
    assert a["85354-9"]["identifier"] == b["85354-9"]["identifier"]


@pytest.fixture
def patient(fhir: FhirServer) -> dict[str, Any]:
    return fhir.create({"resourceType": "Patient",
                        "identifier": [{"system": RESIDENT, "value": "110101196003050012"}]})


def test_readings_post_and_resending_creates_no_duplicates(
        fhir: FhirServer, patient: dict[str, Any]) -> None:
    ctx = DeviceContext(organization=None)
    first = convert_gateway_payload(reading(), ctx)
    later = convert_gateway_payload(reading(time="2024-03-06T08:30:00+08:00"), ctx)
    for conv in (first, later, first, later):
        fhir.post_bundle(conv.bundle)
    assert fhir.count("Device") == 1
    assert fhir.count("Observation") == 4
    obs = fhir.search(f"Observation?subject=Patient/{patient['id']}&code=http://loinc.org|85354-9")
    assert len(obs) == 2
    [device] = fhir.search("Device?identifier=urn:huitong:device-serial|BPM-0001")
    assert all(o["device"]["reference"] == f"Device/{device['id']}" for o in obs)
    assert device["manufacturer"] == "康健"
