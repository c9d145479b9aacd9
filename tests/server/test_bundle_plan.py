"""The pure transaction planner: ordering, id pre-assignment, reference collection."""

from __future__ import annotations

import itertools

import pytest

from huitong.fhir.errors import Category, FhirError
from huitong.server.bundle_plan import (
    collect_references,
    conditional_reference,
    plan_bundle,
    rewrite_references,
)

BASE = "http://hie.test/fhir"


def _ids():
    counter = itertools.count(1)
    return lambda: f"id{next(counter)}"


def _entry(method, url, resource=None, full_url=None):
    e = {"request": {"method": method, "url": url}}
    if resource is not None:
        e["resource"] = resource
    if full_url:
        e["fullUrl"] = full_url
    return e


def test_processing_order_and_preassigned_ids():
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        _entry("GET", "Patient?name=x"),
        _entry("PUT", "Patient/a", {"resourceType": "Patient", "id": "a"}, "urn:uuid:put"),
        _entry("POST", "Patient", {"resourceType": "Patient"}, "urn:uuid:p"),
        _entry("DELETE", "Patient/b"),
        _entry("PATCH", "Patient/c", {"resourceType": "Binary"}),
        _entry("POST", f"{BASE}/Observation", {"resourceType": "Observation"}),
    ]}
    plan = plan_bundle(bundle, base_url=BASE, new_id=_ids())
    assert plan.order == [3, 2, 5, 1, 4, 0]
    assert plan.aliases == {"urn:uuid:put": "Patient/a", "urn:uuid:p": "Patient/id1"}
    assert plan.entries[5].path == "Observation"
    assert plan.entries[5].id == "id2"
    assert plan.entries[0].params == [("name", "x")]


def test_collect_and_rewrite_references():
    res = {"resourceType": "Observation",
           "subject": {"reference": "urn:uuid:p"},
           "contained": [{"resourceType": "Patient", "link": [{"other": {"reference": "#x"}}]}],
           "extension": [{"valueReference": {"reference": "urn:uuid:p"}}],
           "text": {"div": "<div>urn:uuid:00000000-0000-0000-0000-000000000001</div>"}}
    refs, divs = [], []
    collect_references(res, refs, divs)
    assert len(refs) == 3 and len(divs) == 1
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [_entry("POST", "Observation", res)]}
    plan = plan_bundle(bundle, base_url=BASE, new_id=_ids())
    rewrite_references(plan, {"urn:uuid:p": "Patient/1",
                              "urn:uuid:00000000-0000-0000-0000-000000000001": "Patient/2"})
    assert res["subject"]["reference"] == "Patient/1"
    assert res["extension"][0]["valueReference"]["reference"] == "Patient/1"
    assert res["contained"][0]["link"][0]["other"]["reference"] == "#x"
    assert res["text"]["div"] == "<div>Patient/2</div>"


def test_conditional_reference():
    assert conditional_reference("Patient?identifier=a|b") == ("Patient", [("identifier", "a|b")])
    assert conditional_reference("Patient/1") is None
    assert conditional_reference("urn:uuid:x") is None


@pytest.mark.parametrize(("bundle", "expression"), [
    ({"resourceType": "Patient"}, "Bundle"),
    ({"resourceType": "Bundle", "type": "collection"}, "Bundle.type"),
    ({"resourceType": "Bundle", "type": "transaction", "entry": {}}, "Bundle.entry"),
    ({"resourceType": "Bundle", "type": "transaction", "entry": [1]}, "Bundle.entry[0]"),
    ({"resourceType": "Bundle", "type": "transaction",
      "entry": [_entry("POST", "Patient")]}, "Bundle.entry[0].resource"),
    ({"resourceType": "Bundle", "type": "transaction",
      "entry": [_entry("PUT", "Patient", {"resourceType": "Patient"})]},
     "Bundle.entry[0].request.url"),
    ({"resourceType": "Bundle", "type": "transaction",
      "entry": [_entry("GET", "http://elsewhere/fhir/Patient/1")]},
     "Bundle.entry[0].request.url"),
])
def test_malformed_bundles(bundle, expression):
    with pytest.raises(FhirError) as info:
        plan_bundle(bundle, base_url=BASE, new_id=_ids())
    assert info.value.category == Category.INVALID
    assert info.value.issues[0].expression == expression
