"""Whatever bytes arrive, the feed converters report problems instead of raising, and every
entry they do produce is valid FHIR."""

from __future__ import annotations

import io

from feeds_samples import GOOD_ROWS, HEADER, bp_mapping
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huitong.fhir.validation import validate_resource
from huitong.ingest.feeds import convert_csv, convert_json, parse_mapping_toml

MAPPING = parse_mapping_toml(bp_mapping(7))
CELLS = st.text(alphabet=st.sampled_from(list('0123456789,"\n\r\t;年月日-/: 男女张李.xX')),
                max_size=40)


def _check(conversions: object) -> None:
    for conv in conversions:  # type: ignore[attr-defined]
        for entry in conv.entries:
            validate_resource(entry["resource"])
        for p in conv.problems:
            assert p.en and p.zh


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_csv_arbitrary_bytes(data: bytes) -> None:
    _check(convert_csv(io.BytesIO(HEADER.encode() + data), MAPPING))
    _check(convert_csv(io.BytesIO(data), MAPPING))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(CELLS, min_size=5, max_size=9), max_size=6),
       st.sampled_from(["utf-8", "gb18030", "utf-8-sig"]))
def test_csv_mangled_rows(rows: list[list[str]], encoding: str) -> None:
    text = HEADER + GOOD_ROWS[0] + "".join(",".join(r) + "\n" for r in rows)
    _check(convert_csv(io.BytesIO(text.encode(encoding, errors="replace")), MAPPING))


JSON_BITS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) |
    st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["patient", "mrn", "sample", "tests", "code", "value", "unit", "x"]),
        inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_json_arbitrary_bytes(data: bytes) -> None:
    _check(convert_json(io.BytesIO(data), MAPPING))
    _check(convert_json(io.BytesIO(b"[" + data), MAPPING))


@settings(max_examples=150, deadline=None)
@given(st.lists(JSON_BITS, max_size=5))
def test_json_arbitrary_values(values: list[object]) -> None:
    import json

    _check(convert_json(io.BytesIO(json.dumps(values).encode()), MAPPING))
    ndjson = "\n".join(json.dumps(v) for v in values).encode()
    _check(convert_json(io.BytesIO(ndjson), MAPPING))


MAPPING_KEYS = ["feed", "resource", "field", "name", "organization", "key", "type", "mode",
                "identifier", "system", "value", "element", "source", "template", "target",
                "target_identifier", "map", "formats", "unit", "unit_source", "unit_map",
                "only_if", "for_each", "batch_size", "encoding", "delimiter", "timezone",
                "records", "required", "default"]
MAPPING_LEAVES = (st.none() | st.booleans() | st.integers(-5, 20000) |
                  st.sampled_from(["Patient", "Observation", "name[0].text", "valueQuantity",
                                   "subject", "organization", "{a}", "{", "%Y", "%Y-%m-%d",
                                   "Organization/1", "auto", "+08:00", "create", "update",
                                   "", "code.coding[0]", "x.y[", "mm[Hg]", "p"]))
MAPPING_DOCS = st.recursive(
    MAPPING_LEAVES,
    lambda inner: st.lists(inner, max_size=3) |
    st.dictionaries(st.sampled_from(MAPPING_KEYS), inner, max_size=6),
    max_leaves=40)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(MAPPING_KEYS), MAPPING_DOCS, max_size=3))
def test_any_mapping_document_is_accepted_or_explained(doc: dict[str, object]) -> None:
    from huitong.ingest.feeds import MappingError, parse_mapping

    try:
        mapping = parse_mapping(doc)
    except MappingError as err:
        assert err.issues and all(i.where and i.en and i.zh for i in err.issues)
    else:
        _check(convert_csv(io.BytesIO(HEADER.encode() + GOOD_ROWS[0].encode()), mapping))


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_sample_mapping(data: st.DataObject) -> None:
    import copy
    import tomllib

    from huitong.ingest.feeds import MappingError, parse_mapping

    doc = tomllib.loads(bp_mapping(3))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        doc = copy.deepcopy(doc)
        node: object = doc
        for step in path[:-1]:
            node = node[step]  # type: ignore[index]
        node[path[-1]] = data.draw(MAPPING_LEAVES)  # type: ignore[index]
    try:
        mapping = parse_mapping(doc)
    except MappingError as err:
        assert err.issues and all(i.where and i.en and i.zh for i in err.issues)
        return
    rows = HEADER + "".join(GOOD_ROWS)
    _check(convert_csv(io.BytesIO(rows.encode()), mapping))
