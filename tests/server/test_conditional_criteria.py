"""A conditional interaction's criteria are parsed once per text (criteria_query keeps the
parse); every caller still gets a query of its own, equal to a fresh parse."""

from __future__ import annotations

import pytest

from huitong.fhir.errors import FhirError
from huitong.fhir.search.parse import parse_search
from huitong.server.interactions.conditional import criteria_query

CRITERIA = [
    ("Patient", [("identifier", "urn:oid:2.16.840.1.113883.2.4.6.3|12345")]),
    ("Observation", [("identifier", "urn:device:bp-1|2024-05-01T08:00:00+08:00")]),
    ("Encounter", [("identifier", "urn:visit|V1"), ("patient", "Patient/p1")]),
    ("Observation", [("code", "http://loinc.org|8480-6,http://loinc.org|8462-4"),
                     ("date", "ge2024-01-01"), ("_count", "5")]),
]


@pytest.mark.parametrize(("rtype", "params"), CRITERIA)
def test_a_kept_parse_equals_a_fresh_one(rtype: str, params: list[tuple[str, str]]) -> None:
    for _ in range(2):  # the second call answers from the kept parse
        query = criteria_query(rtype, params, what="test", limit=2)
        fresh = parse_search(rtype, [(k, v) for k, v in params if k != "_count"])
        fresh.count, fresh.offset, fresh.total = 2, 0, "none"
        fresh.include, fresh.revinclude, fresh.summary, fresh.elements = [], [], None, None
        assert query == fresh


def test_a_caller_changing_its_query_does_not_change_the_next() -> None:
    rtype, params = CRITERIA[2]
    first = criteria_query(rtype, params, what="test")
    first.clauses.append(first.clauses[0])
    first.applied.append(("x", "y"))
    first.resource_types = ("Patient",)
    second = criteria_query(rtype, params, what="test")
    assert len(second.clauses) == 2 and ("x", "y") not in second.applied
    assert second.resource_types == ("Encounter",)
    assert second.clauses is not first.clauses


def test_criteria_that_do_not_parse_fail_every_time() -> None:
    for _ in range(2):
        with pytest.raises(FhirError):
            criteria_query("Patient", [("no-such-param", "x")], what="test")


def _expected(rtype: str, params: list[tuple[str, str]]) -> object:
    fresh = parse_search(rtype, params)
    fresh.count, fresh.offset, fresh.total = 2, 0, "none"
    fresh.include, fresh.revinclude, fresh.summary, fresh.elements = [], [], None, None
    return fresh


# Criteria never seen before, after one of the same shape: each must equal its own fresh
# parse, whether it takes the shape's shortcut or (escapes, OR lists, modifiers, references,
# several '|') the full parser.
NEW_VALUES = [
    ("Observation", [("identifier", "urn:huitong:device-reading|BPM-00007/2024-03-02T01:01:01Z/8480-6")]),
    ("Observation", [("identifier", "urn:huitong:device-reading|BPM-00008/2024-03-02T01:01:02Z/8480-6")]),
    ("Observation", [("identifier", "just-a-code-no-system")]),
    ("Observation", [("identifier", "|no-system-code")]),
    ("Observation", [("identifier", "urn:x|")]),
    ("Observation", [("identifier", "urn:x|a\\,b")]),
    ("Observation", [("identifier", "urn:x|a,urn:x|b")]),
    ("Observation", [("identifier:of-type", "http://t|MR|123")]),
    ("Encounter", [("identifier", "urn:visit|V2"), ("patient", "Patient/p2")]),
    ("Encounter", [("identifier", "urn:visit|V3"), ("patient", "Patient/p3")]),
    ("Patient", [("identifier", "urn:oid:2.16.156.10011.1.3|110101196003050001"),
                 ("gender", "female")]),
    ("Patient", [("identifier", "urn:oid:2.16.156.10011.1.3|110101196003050002"),
                 ("gender", "male")]),
    ("Patient", [("_id", "abc")]),
    ("Patient", [("_id", "def")]),
    ("Device", [("identifier", "urn:serial|S1"), ("identifier", "urn:serial2|S2")]),
    ("Device", [("identifier", "urn:serial|S3"), ("identifier", "urn:serial2|S4")]),
]


def test_new_criteria_of_a_known_shape_equal_their_fresh_parse() -> None:
    for rtype, params in NEW_VALUES:
        assert criteria_query(rtype, params, what="test", limit=2) == _expected(rtype, params)


def test_a_shape_never_accepts_what_the_parser_refuses() -> None:
    criteria_query("Observation", [("identifier", "urn:x|ok")], what="test")
    with pytest.raises(FhirError):  # two '|' in a plain token: the parser's error, not a match
        criteria_query("Observation", [("identifier", "urn:x|a|b")], what="test")


def test_a_new_value_of_a_known_shape_is_not_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import huitong.fhir.search.parse as parse_module
    from huitong.server.interactions import conditional

    calls: list[object] = []
    real = parse_module.parse_search

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(parse_module, "parse_search", counting)
    # Start from nothing known (earlier tests in this process may have seen the shape).
    monkeypatch.setattr(conditional, "_SHAPES", {})
    conditional._parsed.cache_clear()
    criteria_query("Specimen", [("identifier", "urn:lab|S-1")], what="test")
    assert len(calls) == 1
    second = criteria_query("Specimen", [("identifier", "urn:lab|S-2")], what="test")
    assert len(calls) == 1  # the shape's parse was reused
    assert second == _expected("Specimen", [("identifier", "urn:lab|S-2")])
    criteria_query("Specimen", [("identifier", "urn:lab|S\\|3")], what="test")
    assert len(calls) == 2  # an escape goes through the parser
