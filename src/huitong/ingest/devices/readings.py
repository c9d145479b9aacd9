"""Device readings in one normal form, whatever the payload they came in, and the gateway
JSON payload format.

Gateway JSON (``huitong-device-reading/1``): one reading object, an array of them, or
``{"readings": [...]}``::

    {
      "device":  {"serial": "BPM-2024-0001",            # required
                  "system": "urn:huitong:device-serial", # optional: the serial's namespace
                  "type": "blood-pressure-monitor",      # optional, free text
                  "manufacturer": "…", "model": "…"},    # optional
      "patient": {"system": "urn:oid:2.16.156.10011.1.3", "value": "110101196003050012"},
      "time":    "2024-03-05T08:30:00+08:00",            # ISO 8601; no offset: the channel's
      "measurements": [
        {"type": "systolic",  "value": 128, "unit": "mmHg"},
        {"type": "diastolic", "value": 82,  "unit": "mmHg"},
        {"type": "heart-rate", "value": 72, "unit": "bpm"},
        {"type": "glucose", "value": 6.1, "unit": "mmol/L", "sample": "capillary-whole-blood"}
      ]
    }

Measurement ``type`` is one of :data:`~huitong.ingest.devices.codes.KINDS` (systolic,
diastolic, mean-arterial-pressure, heart-rate, spo2, body-weight, glucose); ``unit`` one of
the spellings that kind accepts (mmHg/kPa, bpm, %, kg/g/lb/斤, mmol/L or mg/dL). A
measurement that cannot be used is a :class:`Problem` with a JSON Pointer into the payload;
the reading's other measurements are still used.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from typing import Any

import orjson

from huitong.ingest.devices.codes import GLUCOSE_MG_DL, GLUCOSE_SAMPLES, KINDS
from huitong.ingest.feeds.problems import Problem, Reason

__all__ = [
    "DEFAULT_SERIAL_SYSTEM",
    "DeviceInfo",
    "Measurement",
    "PatientRef",
    "Reading",
    "check_measurement",
    "parse_gateway_payload",
    "parse_time",
]

DEFAULT_SERIAL_SYSTEM = "urn:huitong:device-serial"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    system: str
    serial: str
    type: str | None = None
    manufacturer: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class PatientRef:
    """The patient by identifier (resolved by the server in the transaction), or a literal
    ``Patient/<id>`` reference when the payload gave one."""

    system: str | None = None
    value: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class Measurement:
    kind: str  # key of KINDS
    value: float | int
    unit: str  # UCUM, after conversion
    pointer: str
    sample: str | None = None  # glucose only


@dataclass(frozen=True, slots=True)
class Reading:
    """One moment's measurements from one device for one patient. ``time`` is the FHIR
    dateTime as sent (with offset); ``instant`` the same moment in UTC, compact, used in the
    de-duplication identifier so the same reading sent in another offset is still one."""

    device: DeviceInfo
    patient: PatientRef
    time: str
    instant: str
    measurements: tuple[Measurement, ...]
    row: int
    pointer: str


def parse_time(raw: object, tz: timezone) -> tuple[str, str] | None:
    """``(dateTime with offset, UTC instant 'YYYYMMDDTHHMMSS[.ffffff]Z')`` or None."""
    if not isinstance(raw, str) or "T" not in raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    utc = parsed.astimezone(UTC)
    instant = utc.strftime("%Y%m%dT%H%M%S") + (f".{utc.microsecond:06d}" if utc.microsecond
                                                else "") + "Z"
    text = parsed.isoformat(timespec="milliseconds" if parsed.microsecond else "seconds")
    return text, instant


def _problem(reason: Reason, en: str, zh: str, row: int, pointer: str, field: str | None = None,
             severity: str = "error") -> Problem:
    return Problem(reason, en, zh, row=row, pointer=pointer, field=field,
                   severity="warning" if severity == "warning" else "error")


def check_measurement(kind_key: str, value: object, unit: object, sample: object, row: int,
                      pointer: str) -> Measurement | Problem:
    """Check one measurement and convert it to the kind's UCUM unit."""
    kind = KINDS.get(kind_key)
    if kind is None:
        return _problem(Reason.UNKNOWN_MEASUREMENT, "unknown measurement type",
                        "未知的测量类型", row, f"{pointer}/type", "type")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return _problem(Reason.BAD_NUMBER, "the value is not a number", "测量值不是数字", row,
                        f"{pointer}/value", "value")
    factor = kind.units.get(unit) if isinstance(unit, str) else None
    if factor is None:
        return _problem(Reason.BAD_UNIT, f"unit not accepted for {kind.key}",
                        f"{kind.zh}不接受该单位", row, f"{pointer}/unit", "unit")
    ucum = kind.unit
    low, high = kind.low, kind.high
    chosen_sample: str | None = None
    if kind.key == "glucose":
        ucum = "mg/dL" if str(unit).lower() == "mg/dl" else "mmol/L"
        if ucum == "mg/dL":
            low, high = GLUCOSE_MG_DL
        chosen_sample = str(sample) if sample is not None else "capillary-whole-blood"
        if chosen_sample not in GLUCOSE_SAMPLES:
            return _problem(Reason.UNKNOWN_MEASUREMENT, "unknown glucose sample type",
                            "未知的血糖样本类型", row, f"{pointer}/sample", "sample")
    converted = value * factor if factor != 1.0 else value
    if isinstance(converted, float):
        converted = round(converted, 1 if factor != 1.0 else 6)
    if not low <= converted <= high:
        return _problem(Reason.IMPLAUSIBLE_VALUE,
                        f"{kind.key} outside the plausible range {low:g}–{high:g} {ucum}",
                        f"{kind.zh}超出合理范围 {low:g}–{high:g} {ucum}", row,
                        f"{pointer}/value", "value")
    return Measurement(kind.key, converted, ucum, pointer, chosen_sample)


def _text(obj: Any, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _reading(obj: Any, row: int, pointer: str, tz: timezone
             ) -> tuple[Reading | None, list[Problem]]:
    if not isinstance(obj, dict):
        return None, [_problem(Reason.NOT_AN_OBJECT, "a reading must be a JSON object",
                               "读数必须是 JSON 对象", row, pointer)]
    problems: list[Problem] = []
    device = obj.get("device")
    serial = _text(device, "serial")
    if serial is None:
        problems.append(_problem(Reason.MISSING_VALUE, "device.serial is required",
                                 "缺少 device.serial", row, f"{pointer}/device/serial",
                                 "device.serial"))
    patient = obj.get("patient")
    psys, pval = _text(patient, "system"), _text(patient, "value")
    if psys is None or pval is None:
        problems.append(_problem(Reason.MISSING_VALUE, "patient.system and patient.value are "
                                 "required", "缺少 patient.system 或 patient.value", row,
                                 f"{pointer}/patient", "patient"))
    when = parse_time(obj.get("time"), tz)
    if when is None:
        problems.append(_problem(Reason.BAD_DATE, "time must be an ISO 8601 date-time",
                                 "time 必须是 ISO 8601 日期时间", row, f"{pointer}/time", "time"))
    raw = obj.get("measurements")
    if not isinstance(raw, list) or not raw:
        problems.append(_problem(Reason.MISSING_VALUE, "measurements must be a non-empty array",
                                 "measurements 必须是非空数组", row, f"{pointer}/measurements",
                                 "measurements"))
        raw = []
    if problems:
        return None, problems
    measurements = []
    for i, m in enumerate(raw):
        where = f"{pointer}/measurements/{i}"
        if not isinstance(m, dict):
            problems.append(_problem(Reason.NOT_AN_OBJECT, "a measurement must be an object",
                                     "测量项必须是对象", row, where))
            continue
        checked = check_measurement(str(m.get("type")), m.get("value"), m.get("unit"),
                                    m.get("sample"), row, where)
        if isinstance(checked, Problem):
            problems.append(checked)
        else:
            measurements.append(checked)
    assert serial is not None and when is not None
    info = DeviceInfo(_text(device, "system") or DEFAULT_SERIAL_SYSTEM, serial,
                      _text(device, "type"), _text(device, "manufacturer"), _text(device, "model"))
    reading = Reading(info, PatientRef(psys, pval), when[0], when[1], tuple(measurements), row,
                      pointer)
    return (reading if measurements else None), problems


def parse_gateway_payload(payload: bytes | str | Any, tz: timezone
                          ) -> tuple[list[Reading], list[Problem]]:
    """Readings from a gateway payload (bytes, text or already-parsed JSON) and the problems
    found. Invalid JSON is one problem and no readings."""
    if isinstance(payload, bytes | str):
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return [], [Problem(Reason.BAD_RECORD, "the payload is not valid JSON",
                                "报文不是有效的 JSON", pointer="")]
    items: Iterator[tuple[Any, str]]
    if isinstance(payload, dict) and "readings" in payload:
        readings = payload["readings"]
        items = iter([(r, f"/readings/{i}") for i, r in enumerate(readings)]
                     if isinstance(readings, list) else [(readings, "/readings")])
    elif isinstance(payload, list):
        items = iter([(r, f"/{i}") for i, r in enumerate(payload)])
    else:
        items = iter([(payload, "")])
    out: list[Reading] = []
    problems: list[Problem] = []
    for row, (obj, pointer) in enumerate(items, 1):
        reading, found = _reading(obj, row, pointer, tz)
        problems.extend(found)
        if reading is not None:
            out.append(reading)
    return out, problems
