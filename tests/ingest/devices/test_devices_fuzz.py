"""Arbitrary device payloads are reported, never raised, and produce only valid FHIR."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from huitong.fhir.validation import validate_resource
from huitong.ingest.devices import convert_gateway_payload, convert_phd_bundle

KEYS = ["device", "serial", "patient", "system", "value", "time", "measurements", "type",
        "unit", "readings", "resourceType", "entry", "resource", "code", "coding",
        "valueQuantity", "component", "subject", "reference", "effectiveDateTime", "fullUrl"]
LEAVES = (st.none() | st.booleans() | st.integers(-10, 400) | st.floats(allow_nan=True) |
          st.sampled_from(["systolic", "spo2", "glucose", "mmHg", "%", "mg/dL",
                           "2024-03-05T08:30:00+08:00", "urn:iso:std:iso:11073:10101",
                           "150020", "Observation", "Device", "Patient/1", "Bundle", ""]))
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) |
                      st.dictionaries(st.sampled_from(KEYS), inner, max_size=6), max_leaves=30)


def _check(conv: object) -> None:
    for entry in conv.entries:  # type: ignore[attr-defined]
        validate_resource(entry["resource"])


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_gateway_payloads(value: object) -> None:
    _check(convert_gateway_payload(value))
    _check(convert_phd_bundle(value if isinstance(value, dict) else {"x": value}))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_payload_bytes(data: bytes) -> None:
    _check(convert_gateway_payload(data))
    _check(convert_phd_bundle(data))
    _check(convert_gateway_payload(json.dumps({"readings": [data.hex()]})))


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: object, path: tuple[object, ...], value: object) -> object:
    if not path:
        return value
    copy = json.loads(json.dumps(doc))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copy


def _samples() -> list[object]:
    from test_devices_gateway import reading
    from test_devices_phd import phd_bundle

    return [reading(), phd_bundle()]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_mutated_real_payloads(data: st.DataObject) -> None:
    gateway, phd = _samples()
    for doc, convert in ((gateway, convert_gateway_payload), (phd, convert_phd_bundle)):
        paths = _paths(doc)
        for _ in range(data.draw(st.integers(1, 3))):
            doc = _mutate(doc, data.draw(st.sampled_from(paths)), data.draw(VALUES))
            paths = _paths(doc)
        conv = convert(doc)  # type: ignore[operator]
        _check(conv)
