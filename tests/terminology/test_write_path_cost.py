"""The write path's pre-check, made cheaper, against its plain form: the regular expressions
over the text with ``meta`` and ``text`` cut out (the form the pre-check had before it read
systems one by one). Both must answer the same on every input: Synthea resources stamped the
way the store stamps them, and generated resources mixing what the shortcuts read (escapes,
systems with and without ":", Identifiers, tags in meta, narratives, quantities).
Pure functions: no database."""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest

from huitong.terminology.units.quantity import _copied
from huitong.terminology.write_path import (
    _LOOSE,
    _NOT_WALKED,
    _NOTHING,
    _PLAIN_TEXT,
    _REFERENCE_RANGE,
    _STANDARD,
    _STRICT,
    _SYSTEM_KEY,
    _VALUE_QUANTITY,
    _WALK,
    _precheck,
    _quantity_changes,
)
from huitong_testdata import synthea_bundles

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"


def _plain_precheck(content: dict[str, Any], units: bool) -> int:
    """The pre-check as it was written first: serialise meta and text again to cut them out,
    count, and run the pattern over the rest."""
    data = orjson.dumps(content)
    for key in ("meta", "text"):
        value = content.get(key)
        if value is None or (key == "text" and type(value) is dict
                             and _PLAIN_TEXT.issuperset(value)):  # fmt: skip
            continue
        piece = b'"' + key.encode() + b'":' + orjson.dumps(value)
        at = data.find(piece)
        if at < 0:
            data = orjson.dumps({k: v for k, v in content.items() if k not in _NOT_WALKED})
            break
        data = data[:at] + data[at + len(piece):]
    value_keys = data.count(_VALUE_QUANTITY) if units else 0
    range_keys = data.count(_REFERENCE_RANGE) if units else 0
    quantities = value_keys or range_keys
    if data.count(b'"code":"') > data.count(_SYSTEM_KEY):
        return _WALK
    if (_STRICT if quantities else _LOOSE).search(data) is not None:
        return _WALK
    return _quantity_changes(content, value_keys, range_keys) if quantities else _NOTHING


def _stamped(resource: dict[str, Any], i: int) -> dict[str, Any]:
    """``resource`` as the store hands it to the transform: resourceType, id, meta first."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = "1"
    meta["lastUpdated"] = "2026-01-02T03:04:05.678901+00:00"
    out = {"resourceType": resource.get("resourceType"), "id": resource.get("id") or f"r{i}",
           "meta": meta}  # fmt: skip
    out.update({k: v for k, v in resource.items() if k not in out})
    return out


def _same(resource: dict[str, Any]) -> None:
    before = copy.deepcopy(resource)
    for units in (True, False):
        assert _precheck(resource, units) == _plain_precheck(resource, units), (units, resource)
    assert resource == before


def test_synthea_resources_answer_as_the_plain_form() -> None:
    seen = 0
    for body in synthea_bundles(15):
        for i, entry in enumerate(orjson.loads(body)["entry"]):
            _same(entry["resource"])
            _same(_stamped(entry["resource"], i))
            seen += 1
    assert seen > 4000


SYSTEMS = [
    *_STANDARD,
    "http://loinc.org",
    "http://snomed.info/sct",
    "http://terminology.hl7.org/CodeSystem/v2-0203",
    "https://bluebutton.cms.gov/resources/codesystem/adjudication",
    "http://hl7.org/fhir/sid/us-npi",
    "http://loinc.or",  # a standard prefix, one byte short
    "http://loinc.orgx",  # standard: a prefix match
    "http://hospital.example/lab",
    "urn:oid:1.2.3",
    "urn:lab",
    "lab-local",
    "phone",
    "email",
    "",
    "http://x/\"quoted\"",
    "back\\slash",
    "http://loinc.org\\",
    "ünïcode:sys",
    "no colon \"quoted\"",
    'urn:x","value":',
    ',"value":',
    "system",
]
CODES: list[Any] = ["1", "2339-0", "29463-7", "", 'a"b', 7, None]
UNITS = [("kg", "kg"), ("[lb_av]", "[lb_av]"), ("mg/dL", "mg/dL"), ("mmol/L", "mmol/L"),
         ("mmHg", None), ("pg", "pg")]  # fmt: skip


def _coding(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rng.random() < 0.9:
        out["system"] = rng.choice(SYSTEMS)
    if rng.random() < 0.95:
        out["code"] = rng.choice(CODES)
    if rng.random() < 0.3:
        out["display"] = rng.choice(["x", 'say "hi"', "line\nbreak", "valueQuantity"])
    if rng.random() < 0.2:  # the system last: what follows its quote changes
        system = out.pop("system", "urn:lab")
        out["system"] = system
    return out


def _quantity(rng: random.Random) -> dict[str, Any]:
    unit, code = rng.choice(UNITS)
    q: dict[str, Any] = {"value": rng.choice([70, 5.5, 154.0, True, "12"]), "unit": unit}
    if code is not None and rng.random() < 0.9:
        q["system"] = UCUM
        q["code"] = code
    return q


def _resource(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": rng.choice(["Observation", "Condition", "Patient"]),
                           "id": rng.choice(["a", "b-1", 'q"id'])}  # fmt: skip
    if rng.random() < 0.9:
        meta: dict[str, Any] = {"versionId": "1"}
        if rng.random() < 0.7:
            meta["tag"] = [_coding(rng) for _ in range(rng.randint(1, 2))]
        if rng.random() < 0.2:
            meta["profile"] = [rng.choice(["valueQuantity", "http://p", "referenceRange"])]
        if rng.random() < 0.1:
            meta["extension"] = [{"url": "urn:x", "valueQuantity": _quantity(rng)}]
        out["meta"] = meta
    if rng.random() < 0.3:
        out["text"] = rng.choice([
            {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
            {"status": "generated", "div": "<div>plain</div>"},
            {"status": "generated", "div": "<div/>", "extension": [
                {"url": "urn:x", "valueCoding": {"system": "urn:lab", "code": "1"}}]},
        ])  # fmt: skip
    if rng.random() < 0.3:
        out["identifier"] = [{"system": rng.choice(SYSTEMS), "value": "1"}]
    if rng.random() < 0.2:
        out["telecom"] = [{"system": rng.choice(["phone", "email"]), "value": "555"}]
    out["status"] = "final"
    if rng.random() < 0.9:
        out["code"] = {"coding": [_coding(rng) for _ in range(rng.randint(1, 3))]}
    if rng.random() < 0.15:
        out["category"] = [{"coding": [_coding(rng)]}]
    if rng.random() < 0.6:
        out["valueQuantity"] = _quantity(rng)
    if rng.random() < 0.15:
        out["referenceRange"] = [{"low": _quantity(rng), "high": _quantity(rng)}]
    if rng.random() < 0.15:
        out["component"] = [
            {"code": {"coding": [_coding(rng)]}, "valueQuantity": _quantity(rng)}
            for _ in range(rng.randint(1, 2))
        ]
    if rng.random() < 0.1:
        out["extension"] = [{"url": "urn:x", "valueQuantity": _quantity(rng)}]
    if rng.random() < 0.2 and "meta" in out:  # a contained resource with the same meta, or
        # another one (then the first '"meta":' in the text is not the one to cut)
        other = rng.choice([copy.deepcopy(out["meta"]), {"tag": [_coding(rng)]}, {}])
        out["contained"] = [{"resourceType": "Basic", "meta": other}]
    if rng.random() < 0.1:
        out["note"] = [{"text": rng.choice(['"system":"urn:lab"', "a\\b", "plain"])}]
    if rng.random() < 0.3 and "meta" in out:  # meta not right after the id
        out["meta"] = out.pop("meta")
    return out


@pytest.mark.parametrize("seed", range(8))
def test_generated_resources_answer_as_the_plain_form(seed: int) -> None:
    rng = random.Random(seed)
    answers = set()
    for _ in range(1500):
        resource = _resource(rng)
        _same(resource)
        answers.add(_plain_precheck(resource, True))
    assert answers == {0, 1, 2}  # every outcome was exercised


@pytest.mark.parametrize(
    ("system", "after"),
    [
        (system, after)
        for system in ["urn:lab", "lab-local", "http://loinc.org", "a\\b", "x\"y", "", ":"]
        for after in [',"value":"1"', ',"code":"1"', "", ',"valu":1', ',"value":1']
    ],
)
def test_one_system_in_every_position(system: str, after: str) -> None:
    """A single system, followed by each thing that can follow its closing quote."""
    tail = orjson.loads("{" + after[1:] + "}") if after else {}
    for quantity in (False, True):
        resource: dict[str, Any] = {"resourceType": "Observation", "id": "1",
                                    "code": {"coding": [{"system": system, **tail}]}}  # fmt: skip
        if quantity:
            resource["valueQuantity"] = {"value": 70, "unit": "kg", "system": UCUM, "code": "kg"}
        _same(resource)


def test_copied_is_a_deep_copy() -> None:
    value = {"a": 1, "b": [1, {"c": [2, None]}, "x"], "d": {"e": True}, "f": 1.5, "g": None}
    out = _copied(value)
    assert out == value
    assert orjson.dumps(out) == orjson.dumps(value)
    assert out is not value and out["b"] is not value["b"] and out["d"] is not value["d"]
    assert out["b"][1] is not value["b"][1] and out["b"][1]["c"] is not value["b"][1]["c"]
    assert list(out) == list(value)
    out["b"][1]["c"].append(3)
    assert value["b"][1]["c"] == [2, None]
