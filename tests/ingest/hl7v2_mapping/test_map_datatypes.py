"""Datatype maps on their own: DTM precision, CX systems, XPN, XTN, UCUM units, escapes."""

from __future__ import annotations

import pytest
from v2map_helpers import CTX, only, parse_text

from huitong.ingest.hl7v2.mapping import map_message
from huitong.ingest.hl7v2.mapping.datatypes import dtm_date, dtm_datetime, dtm_instant
from huitong.ingest.hl7v2.mapping.datatypes.quantities import ucum_unit
from huitong.ingest.hl7v2.mapping.message import Value


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026", "2026"),
    ("202603", "2026-03"),
    ("20260315", "2026-03-15"),
    ("2026031509", "2026-03-15T09:00:00+08:00"),
    ("202603150930", "2026-03-15T09:30:00+08:00"),
    ("20260315093015", "2026-03-15T09:30:15+08:00"),
    ("20260315093015.25", "2026-03-15T09:30:15.25+08:00"),
    ("20260315093015-0500", "2026-03-15T09:30:15-05:00"),
    ("20260230", None),  # no such day
    ("20261315", None),
    ("2026031525", None),
    ("soon", None),
])
def test_dtm_keeps_precision_and_needs_a_zone(raw: str, expected: str | None) -> None:
    assert dtm_datetime(raw) == expected


def test_date_and_instant() -> None:
    assert dtm_date("20260315093015+0800") == "2026-03-15"
    assert dtm_instant("20260315") is None  # an instant needs a time
    assert dtm_instant("202603150930", "+00:00") == "2026-03-15T09:30:00+00:00"


def _unit(code: str, text: str = "", system: str = "") -> dict[str, str] | None:
    return ucum_unit(Value(((code,), (text,), (system,))))


@pytest.mark.parametrize(("code", "system", "ucum"), [
    ("mg/dL", "", "mg/dL"), ("mmol/L", "", "mmol/L"), ("10*3/uL", "", "10*3/uL"),
    ("%", "", "%"), ("kg/m2", "", "kg/m2"), ("/min", "", "/min"), ("mm[Hg]", "", "mm[Hg]"),
    ("mmHg", "", "mm[Hg]"), ("K/uL", "", "10*3/uL"), ("mEq/L", "", "meq/L"),
    ("anything", "UCUM", "anything"),  # the sender says it is UCUM
    ("cells/hpf", "", None), ("widgets", "", None), ("mg per dL", "", None),
])
def test_ucum_units(code: str, system: str, ucum: str | None) -> None:
    unit = _unit(code, "", system)
    assert unit is not None and unit["unit"] == code
    if ucum is None:
        assert "system" not in unit and "code" not in unit
    else:
        assert (unit["system"], unit["code"]) == ("http://unitsofmeasure.org", ucum)


_PID = ("MSH|^~\\&|HIS|H1|HIE|R|20260101||ADT^A28|Q1|P|2.5\r"
        "PID|1||{cx}||{xpn}||19900101|F|||||{xtn}\r")


@pytest.mark.parametrize(("cx", "system", "value"), [
    ("M1^^^HOSP^MR", "urn:huitong:org:org-1:mrn%3AHOSP", "M1"),
    ("M1^^^&1.2.840.1&ISO^MR", "urn:oid:1.2.840.1", "M1"),
    ("M1^^^^MR", "urn:huitong:org:org-1:mrn", "M1"),
    ("11010119900101123x^^^CHN^NNCHN", "urn:oid:2.16.156.10011.1.3", "11010119900101123X"),
    ("11010119900101123X^^^居民身份证", "urn:oid:2.16.156.10011.1.3", "11010119900101123X"),
])
def test_cx_systems(cx: str, system: str, value: str) -> None:
    text = _PID.format(cx=cx, xpn="Wang^Li", xtn="")
    ident = only(map_message(parse_text(text), CTX).bundle, "Patient")["identifier"][0]
    assert (ident["system"], ident["value"]) == (system, value)


@pytest.mark.parametrize(("xpn", "name"), [
    ("Smith^John^Q^Jr^Dr^^L", {"use": "official", "family": "Smith", "given": ["John", "Q"],
                               "prefix": ["Dr"], "suffix": ["Jr"]}),
    ("欧阳^娜娜", {"text": "欧阳娜娜", "family": "欧阳", "given": ["娜娜"]}),
    ("O\\T\\Brien^Pat", {"family": "O&Brien", "given": ["Pat"]}),  # \T\ is the & escape
])
def test_xpn(xpn: str, name: dict[str, object]) -> None:
    text = _PID.format(cx="M1^^^H1^MR", xpn=xpn, xtn="")
    assert only(map_message(parse_text(text), CTX).bundle, "Patient")["name"] == [name]


@pytest.mark.parametrize(("xtn", "telecom"), [
    ("^PRN^PH^^86^571^87654321", {"system": "phone", "value": "+86 (571) 87654321",
                                  "use": "home"}),
    ("^NET^Internet^li@example.cn", {"system": "email", "value": "li@example.cn"}),
    ("+86 139 0000 1111^PRN^PH", {"system": "phone", "value": "+86 139 0000 1111",
                                  "use": "mobile"}),
    ("(555)555-1234^WPN^FX", {"system": "fax", "value": "(555)555-1234", "use": "work"}),
])
def test_xtn(xtn: str, telecom: dict[str, str]) -> None:
    text = _PID.format(cx="M1^^^H1^MR", xpn="Li^Na", xtn=xtn)
    assert only(map_message(parse_text(text), CTX).bundle, "Patient")["telecom"] == [telecom]


def test_text_and_parsed_messages_map_the_same() -> None:
    text = _PID.format(cx="M1^^^H1^MR", xpn="O\\T\\Brien^Pat", xtn="^PRN^PH^^^^5551234")
    assert map_message(text, CTX).bundle == map_message(parse_text(text), CTX).bundle
