"""The mapping file is checked as a whole, with every issue reported in English and Chinese."""

from __future__ import annotations

import pytest
from feeds_samples import bp_mapping

from huitong.ingest.feeds import MappingError, parse_mapping_toml


def issues_of(text: str) -> dict[str, tuple[str, str]]:
    with pytest.raises(MappingError) as caught:
        parse_mapping_toml(text)
    return {i.where: (i.en, i.zh) for i in caught.value.issues}


def test_sample_mapping_compiles_with_inferred_types() -> None:
    m = parse_mapping_toml(bp_mapping())
    assert m.name == "community-bp"
    assert m.organization == "Organization?identifier=urn:huitong:org-code|C01"
    kinds = {f.element.text: f.kind for f in m.resources[0].fields}
    assert kinds["birthDate"] == "date"
    assert kinds["gender"] == "mapped"
    obs = {f.element.text: f.kind for f in m.resources[1].fields}
    assert obs["valueQuantity"] == "quantity" and obs["effectiveDateTime"] == "dateTime"


def test_every_issue_is_listed_with_its_location() -> None:
    text = """
[feed]
name = "x"
organization = "Hospital/1"
encoding = "latin-1"
batch_size = 0
timezone = "CST"
colour = "blue"

[[resource]]
key = "p"
type = "Patiant"
identifier = { system = "s", value = "{id}" }

[[resource]]
key = "o"
type = "Observation"
identifier = { system = "s" }
  [[resource.field]]
  element = "valueQuantity.valeu"
  source = "v"
  [[resource.field]]
  element = "subject"
  target = "nobody"
  [[resource.field]]
  element = "status"
  source = "s"
  value = "final"
  [[resource.field]]
  element = "code"
  source = "c"
  [[resource.field]]
  element = "identifier[0].value"
  source = "id"
  [[resource.field]]
  element = "effectiveDateTime"
  source = "t"
  formats = ["%Y %Y-%m"]
"""
    found = issues_of(text)
    for where in [
        "feed.organization", "feed.encoding", "feed.batch_size", "feed.timezone", "feed.colour",
        "resource[0].type", "resource[1].identifier.value", "resource[1].field[0].element",
        "resource[1].field[1].target", "resource[1].field[2]", "resource[1].field[3]",
        "resource[1].field[4].element", "resource[1].field[5].formats",
    ]:
        assert where in found, (where, sorted(found))
    for en, zh in found.values():
        assert en and zh and en != zh
    assert "valeu" in found["resource[1].field[0].element"][0]


def test_bad_toml_and_missing_sections() -> None:
    assert "mapping" in issues_of("[feed\nname=1")
    found = issues_of("[feed]\nname = 'x'\norganization = 'Organization/1'\n")
    assert set(found) == {"resource"}


def test_duplicate_keys_and_types_without_identifier() -> None:
    text = """
[feed]
name = "x"
organization = "Organization/1"
[[resource]]
key = "a"
type = "Patient"
identifier = { system = "s", value = "{id}" }
[[resource]]
key = "a"
type = "Binary"
identifier = { system = "s", value = "{id}" }
"""
    found = issues_of(text)
    assert "duplicate" in found["resource[1].key"][0]
    assert "identifier" in found["resource[1].type"][0]


def test_values_must_fit_their_element() -> None:
    text = """
[feed]
name = "x"
organization = "Organization/1"
[[resource]]
key = "p"
type = "Patient"
identifier = { system = "s", value = "{id}" }
  [[resource.field]]
  element = "identifier[1]"
  template = "{id2}"
  [[resource.field]]
  element = "gender"
  target = "organization"
  [[resource.field]]
  element = "birthDate"
  source = "b"
  type = "datetime"
"""
    found = issues_of(text)
    assert "Identifier" in found["resource[0].field[0].element"][0]
    assert "Reference" in found["resource[0].field[1].element"][0]
    assert "resource[0].field[2].type" in found
