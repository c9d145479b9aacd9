"""Normalised device readings into an idempotent transaction Bundle: a ``Device`` (conditional
create on its serial identifier) and one ``Observation`` per measurement — the three
blood-pressure values of one moment become one panel with components — linked to the patient
by a conditional reference and de-duplicated by an identifier made of device serial, UTC
measurement time and LOINC code (conditional create, ``ifNoneExist``): a gateway that resends
a reading, or sends it once by REST and once over MQTT, creates it once.

Observations follow the vital-signs profile (https://hl7.org/fhir/R4/observation-vitalsigns.html):
status ``final``, category ``vital-signs`` (glucose: ``laboratory``), LOINC and MDC codings,
``effectiveDateTime``, UCUM ``valueQuantity``, ``device`` and ``subject``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Any

from huitong.fhir.errors import FhirError
from huitong.fhir.validation import validate_resource
from huitong.ingest.devices.codes import (
    BP_PANEL,
    BP_PARTS,
    CATEGORY,
    KINDS,
    UCUM,
    Code,
    glucose_code,
)
from huitong.ingest.devices.readings import Measurement, Reading
from huitong.ingest.feeds.problems import Problem, Reason
from huitong.ingest.feeds.transaction import (
    Conversion,
    Transaction,
    conditional_reference,
    full_url,
)

__all__ = ["READING_SYSTEM", "DeviceContext", "readings_to_bundle"]

READING_SYSTEM = "urn:huitong:device-reading"
"""Identifier system of device Observations: value ``<serial>/<UTC instant>/<LOINC>``."""


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """What a device channel adds: the ``organization`` reference the channel speaks for (set
    as ``Observation.performer`` when given) and the offset of times sent without one."""

    organization: str | None = None
    timezone: timezone = field(default_factory=lambda: timezone(timedelta(hours=8)))


def _device(reading: Reading) -> dict[str, Any]:
    d = reading.device
    out: dict[str, Any] = {
        "resourceType": "Device",
        "identifier": [{"system": d.system, "value": d.serial}],
        "status": "active",
        "serialNumber": d.serial,
    }
    if d.manufacturer:
        out["manufacturer"] = d.manufacturer
    if d.model:
        out["modelNumber"] = d.model
    if d.type:
        out["type"] = {"text": d.type}
    return out


def _quantity(m: Measurement) -> dict[str, Any]:
    return {"value": m.value, "unit": m.unit, "system": UCUM, "code": m.unit}


def _codes(m: Measurement) -> tuple[Code, ...]:
    if m.kind == "glucose":
        return glucose_code(m.unit, m.sample or "capillary-whole-blood")
    return KINDS[m.kind].codes


def _observation(reading: Reading, codes: tuple[Code, ...], category: str, device_url: str,
                 ctx: DeviceContext) -> dict[str, Any]:
    p = reading.patient
    subject = p.reference or conditional_reference("Patient", str(p.system), str(p.value))
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": READING_SYSTEM,
                        "value": f"{reading.device.serial}/{reading.instant}/{codes[0].code}"}],
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [c.coding() for c in codes], "text": codes[0].display},
        "subject": {"reference": subject},
        "effectiveDateTime": reading.time,
        "device": {"reference": device_url},
    }
    if ctx.organization:
        obs["performer"] = [{"reference": ctx.organization}]
    return obs


def _observations(reading: Reading, device_url: str, ctx: DeviceContext) -> list[dict[str, Any]]:
    out = []
    parts = {m.kind: m for m in reading.measurements if m.kind in BP_PARTS}
    if parts:
        panel = _observation(reading, BP_PANEL, "vital-signs", device_url, ctx)
        panel["component"] = [
            {"code": {"coding": [c.coding() for c in KINDS[k].codes]},
             "valueQuantity": _quantity(parts[k])}
            for k in BP_PARTS if k in parts
        ]
        out.append(panel)
    for m in reading.measurements:
        if m.kind in BP_PARTS:
            continue
        obs = _observation(reading, _codes(m), KINDS[m.kind].category, device_url, ctx)
        obs["valueQuantity"] = _quantity(m)
        out.append(obs)
    return out


def readings_to_bundle(readings: list[Reading], ctx: DeviceContext,
                       problems: list[Problem] | None = None, *, validate: bool = True
                       ) -> Conversion:
    """The transaction Bundle for ``readings`` (``problems`` found while parsing them are
    carried into the result). A reading whose resources fail validation is left out and
    reported. ``validate=False`` skips that check: the write validates every resource again,
    so a caller may convert without it and, only when the write is refused, convert again
    with it to report and leave out the invalid readings (``FeedIntake``)."""
    tx = Transaction()
    problems = list(problems or [])
    accepted = 0
    for reading in readings:
        device = _device(reading)
        device_url = full_url("Device", reading.device.system, reading.device.serial)
        observations = _observations(reading, device_url, ctx)
        if validate:
            try:
                validate_resource(device)
                for obs in observations:
                    validate_resource(obs)
            except FhirError as err:
                problems.append(Problem(
                    Reason.INVALID_RESOURCE, f"reading not valid FHIR: {err.message}",
                    "读数生成的资源不符合 FHIR 规范", row=reading.row, pointer=reading.pointer))
                continue
        tx.add(device, reading.device.system, reading.device.serial)
        for obs in observations:
            ident = obs["identifier"][0]
            key = ("Observation", ident["system"], ident["value"])
            if tx.resource(key) is not None:
                problems.append(Problem(
                    Reason.DUPLICATE, "the same measurement of this device at this time came "
                    "twice in one payload; the later one is used",
                    "同一设备同一时间的同一测量在报文中重复出现，以后者为准",
                    row=reading.row, pointer=reading.pointer, severity="warning"))
            tx.add(obs, ident["system"], ident["value"])
        accepted += 1
    rows = {r.row for r in readings} | {p.row for p in problems if p.row is not None}
    return Conversion(tx.bundle(), problems, records=len(rows), accepted=accepted)
