"""Personal Health Device transaction Bundles (http://hl7.org/fhir/uv/phd/) into readings.

A PHD gateway posts a Bundle holding the sensor's ``Device``, often the ``Patient``, and one
``Observation`` per measurement coded in IEEE 11073-10101 (MDC, ``urn:iso:std:iso:11073:10101``)
and usually LOINC, with the blood pressure as a compound observation with components. The
Bundle is not stored as sent: each measurement we understand is normalised (units, codes,
plausibility) and rebuilt by :mod:`huitong.ingest.devices.observations`, so readings from PHD
gateways and from plain JSON gateways land the same way and de-duplicate against each other.

Resolution: ``Observation.device`` and ``Observation.subject`` are looked up among the
Bundle's entries by ``fullUrl`` or ``Type/id``; the device is identified by its first
identifier with system and value (the IEEE EUI-64 system id in PHD), the patient by its
first identifier. A conditional subject (``Patient?identifier=s|v``) is used as it is, and a
literal ``Patient/<id>`` not in the Bundle is kept as a literal reference. Observations that
are not measurements (the coincident time stamp, battery level) are skipped with a warning.
"""

from __future__ import annotations

from datetime import timezone
from typing import Any
from urllib.parse import parse_qsl

import orjson

from huitong.ingest.devices.codes import BP_PARTS, KINDS, LOINC, MDC
from huitong.ingest.devices.readings import (
    DeviceInfo,
    Measurement,
    PatientRef,
    Reading,
    check_measurement,
    parse_time,
)
from huitong.ingest.feeds.problems import Problem, Reason

__all__ = ["parse_phd_bundle"]

# (system, code) -> measurement kind; the compound BP observation is recognised separately.
_KIND_BY_CODE: dict[tuple[str, str], str] = {
    (c.system, c.code): k.key for k in KINDS.values() for c in k.codes
}
_KIND_BY_CODE.update({
    (MDC, "149546"): "heart-rate",  # MDC_PULS_RATE_NON_INV, what BP cuffs report
    (MDC, "149530"): "heart-rate",  # MDC_PULS_OXIM_PULS_RATE, what oximeters report
    (MDC, "160184"): "glucose", (MDC, "160196"): "glucose", (MDC, "160368"): "glucose",
    (LOINC, "15074-8"): "glucose", (LOINC, "2339-0"): "glucose", (LOINC, "41653-7"): "glucose",
    (LOINC, "8478-0"): "mean-arterial-pressure",
})
_BP_CODES = {(MDC, "150020"), (LOINC, "85354-9"), (LOINC, "55284-4")}
_GLUCOSE_SAMPLE = {"160184": "capillary-whole-blood", "160196": "capillary-plasma",
                   "41653-7": "capillary-whole-blood", "2339-0": "blood"}


def _items(obj: Any, key: str) -> list[Any]:
    """``obj[key]`` when it is a list (a gateway's JSON may hold anything anywhere)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _str(obj: Any, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) and value else None


def _codes(concept: Any) -> list[tuple[str, str]]:
    return [(str(c.get("system")), str(c.get("code"))) for c in _items(concept, "coding")
            if isinstance(c, dict)]


def _kind(concept: Any) -> str | None:
    for code in _codes(concept):
        if code in _KIND_BY_CODE:
            return _KIND_BY_CODE[code]
    return None


def _first_identifier(resource: dict[str, Any]) -> tuple[str, str] | None:
    for ident in _items(resource, "identifier"):
        system, value = _str(ident, "system"), _str(ident, "value")
        if system and value:
            return system, value
    return None


def _lookup(index: dict[str, dict[str, Any]], ref: Any) -> dict[str, Any] | None:
    if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
        return index.get(ref["reference"])
    return None


def _patient(index: dict[str, dict[str, Any]], subject: Any) -> PatientRef | None:
    found = _lookup(index, subject)
    if found is not None:
        ident = _first_identifier(found)
        return PatientRef(*ident) if ident else None
    ref = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(ref, str):
        return None
    if ref.startswith("Patient?"):
        params = dict(parse_qsl(ref.split("?", 1)[1]))
        system, _, value = params.get("identifier", "").partition("|")
        return PatientRef(system, value) if system and value else None
    if ref.startswith("Patient/") and "/" not in ref[len("Patient/"):]:
        return PatientRef(reference=ref)
    return None


def _device(index: dict[str, dict[str, Any]], ref: Any) -> DeviceInfo | None:
    found = _lookup(index, ref)
    if found is None or found.get("resourceType") != "Device":
        return None
    ident = _first_identifier(found)
    serial = _str(found, "serialNumber")
    if ident is None:
        if serial is None:
            return None
        ident = ("urn:huitong:device-serial", serial)
    return DeviceInfo(ident[0], ident[1], _str(found.get("type"), "text"),
                      _str(found, "manufacturer"), _str(found, "modelNumber"))


def _values(obs: dict[str, Any], kind: str | None, row: int, pointer: str
            ) -> tuple[list[Measurement], list[Problem]]:
    out: list[Measurement] = []
    problems: list[Problem] = []

    def take(kind_key: str, holder: dict[str, Any], where: str, sample: str | None) -> None:
        q = holder.get("valueQuantity")
        if not isinstance(q, dict):
            problems.append(Problem(Reason.MISSING_VALUE, "no valueQuantity", "缺少 valueQuantity",
                                    row=row, pointer=f"{where}/valueQuantity"))
            return
        unit = q.get("code") if q.get("system") == "http://unitsofmeasure.org" else q.get("unit")
        checked = check_measurement(kind_key, q.get("value"), unit, sample, row,
                                    f"{where}/valueQuantity")
        if isinstance(checked, Problem):
            # check_measurement points at .../valueQuantity/value|unit; keep it
            problems.append(checked)
        else:
            out.append(checked)

    if set(_codes(obs.get("code"))) & _BP_CODES:
        for i, comp in enumerate(_items(obs, "component")):
            part = _kind(comp.get("code")) if isinstance(comp, dict) else None
            if part in BP_PARTS:
                take(part, comp, f"{pointer}/component/{i}", None)
        return out, problems
    if kind is None:
        return out, problems
    sample = None
    if kind == "glucose":
        sample = next((_GLUCOSE_SAMPLE[c] for _, c in _codes(obs.get("code"))
                       if c in _GLUCOSE_SAMPLE), "capillary-whole-blood")
    take(kind, obs, pointer, sample)
    return out, problems


def parse_phd_bundle(bundle: bytes | str | dict[str, Any], tz: timezone
                     ) -> tuple[list[Reading], list[Problem]]:
    """Readings from a PHD Bundle; ``row`` of a reading/problem is the 1-based entry number
    and ``pointer`` points into the Bundle (``/entry/3/resource/component/0``)."""
    if not isinstance(bundle, dict):
        try:
            bundle = orjson.loads(bundle)
        except orjson.JSONDecodeError:
            return [], [Problem(Reason.BAD_RECORD, "the payload is not valid JSON",
                                "报文不是有效的 JSON", pointer="")]
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return [], [Problem(Reason.BAD_RECORD, "a PHD payload must be a Bundle",
                            "PHD 报文必须是 Bundle", pointer="/resourceType")]
    entries = [e for e in _items(bundle, "entry") if isinstance(e, dict)]
    index: dict[str, dict[str, Any]] = {}
    for e in entries:
        r = e.get("resource")
        if isinstance(r, dict):
            if isinstance(e.get("fullUrl"), str):
                index[e["fullUrl"]] = r
            if isinstance(r.get("id"), str):
                index[f"{r.get('resourceType')}/{r['id']}"] = r
    readings: list[Reading] = []
    problems: list[Problem] = []
    for n, e in enumerate(entries):
        obs = e.get("resource")
        if not isinstance(obs, dict) or obs.get("resourceType") != "Observation":
            continue
        row, pointer = n + 1, f"/entry/{n}/resource"
        kind = _kind(obs.get("code"))
        is_bp = bool(set(_codes(obs.get("code"))) & _BP_CODES)
        if kind is None and not is_bp:
            problems.append(Problem(Reason.UNKNOWN_MEASUREMENT, "not a measurement Huitong maps; "
                                    "skipped", "非可映射的测量，已跳过", row=row,
                                    pointer=f"{pointer}/code", severity="warning"))
            continue
        device = _device(index, obs.get("device"))
        patient = _patient(index, obs.get("subject"))
        effective = obs.get("effectiveDateTime")
        if effective is None and isinstance(obs.get("effectivePeriod"), dict):
            effective = obs["effectivePeriod"].get("start")
        when = parse_time(effective, tz)
        missing = [(name, en, zh) for name, ok, en, zh in (
            ("device", device, "the device cannot be identified", "无法识别设备"),
            ("subject", patient, "the patient cannot be identified", "无法识别患者"),
            ("effectiveDateTime", when, "no measurement time", "缺少测量时间"),
        ) if ok is None]
        if missing:
            problems.extend(Problem(Reason.MISSING_VALUE, en, zh, row=row,
                                    pointer=f"{pointer}/{name}", field=name)
                            for name, en, zh in missing)
            continue
        assert device is not None and patient is not None and when is not None
        values, found = _values(obs, kind, row, pointer)
        problems.extend(found)
        if values:
            readings.append(Reading(device, patient, when[0], when[1], tuple(values), row,
                                    pointer))
    return readings, problems
