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
