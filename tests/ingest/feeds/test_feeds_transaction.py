"""Idempotent entries: escaping of search values, deterministic fullUrls, one entry per
identity, and the public surface of the feeds package."""

from __future__ import annotations

import sys
from urllib.parse import parse_qsl

import huitong.ingest.feeds as feeds
from huitong.fhir.search.parse import parse_search
from huitong.ingest.feeds import Transaction, conditional_reference, full_url, identifier_criteria


def test_identifier_values_with_search_syntax_round_trip_through_the_parser() -> None:
    value = "A,1|2$3\\4 &5=6+7%8#9"
    criteria = identifier_criteria("urn:x:sys", value)
    params = parse_qsl(criteria, keep_blank_values=True)
    query = parse_search("Patient", params)
    [clause] = query.clauses
    [parsed] = clause.values
    assert [p.text for p in parsed.parts] == ["urn:x:sys", value]


def test_full_urls_are_deterministic_and_distinct() -> None:
    a = full_url("Patient", "urn:s", "1")
    assert a == full_url("Patient", "urn:s", "1")
    assert a.startswith("urn:uuid:") and len(a) == len("urn:uuid:") + 36
    assert len({a, full_url("Patient", "urn:s", "2"), full_url("Device", "urn:s", "1"),
                full_url("Patient", "urn:t", "1")}) == 4


def test_one_entry_per_identity() -> None:
    tx = Transaction()
    url, replaced = tx.add({"resourceType": "Patient", "gender": "male"}, "urn:s", "1", "update")
    assert not replaced
    again, replaced = tx.add({"resourceType": "Patient", "gender": "female"}, "urn:s", "1",
                             "update")
    assert replaced and again == url and len(tx) == 1
    [entry] = tx.bundle()["entry"]
    assert entry["resource"]["gender"] == "female"
    assert entry["request"] == {"method": "PUT", "url": "Patient?identifier=urn:s|1"}
    assert Transaction().bundle() == {"resourceType": "Bundle", "type": "transaction"}
    assert conditional_reference("Patient", "urn:s", "a|b") == "Patient?identifier=urn:s|a%5C|b"


def test_public_surface_is_explicit() -> None:
    public = {n for n, v in vars(feeds).items()
              if not n.startswith("_") and not isinstance(v, type(sys))}
    assert set(feeds.__all__) == public
