"""JSON feeds: arrays (streamed), NDJSON, single objects; JSON Pointers in problems; the
Bundles accepted by the real server."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from feeds_samples import organization

from fhir_test_client import FhirServer
from huitong.ingest.feeds import (
    Conversion,
    MappingError,
    Reason,
    convert_file,
    convert_json,
    parse_mapping_toml,
)

MAPPING = """
[feed]
name = "lab-json"
organization = "ORG"
batch_size = BATCH

[[resource]]
key = "patient"
type = "Patient"
mode = "update"
identifier = { system = "urn:oid:2.16.156.10011.1.3", value = "{patient.id_card}" }
  [[resource.field]]
  element = "name[0].text"
  source = "patient.name"
  [[resource.field]]
  element = "birthDate"
  source = "patient.birth"

[[resource]]
key = "glucose"
type = "Observation"
identifier = { system = "urn:huitong:lab:C01", value = "{sample}-{tests[0].code}" }
  [[resource.field]]
  element = "status"
  value = "final"
  [[resource.field]]
  element = "code.coding[0]"
  source = "tests[0].code"
  map = { GLU = { system = "http://loinc.org", code = "15074-8", display = "Glucose [Moles/volume] in Blood" } }
  [[resource.field]]
  element = "subject"
  target = "patient"
  [[resource.field]]
  element = "valueQuantity"
  source = "tests[0].value"
  unit_source = "tests[0].unit"
  unit_map = { "mmol/L" = "mmol/L", "毫摩尔/升" = "mmol/L" }
  [[resource.field]]
  element = "issued"
  source = "reported"
"""


def mapping(batch: int = 500, org: str = "Organization?identifier=urn:huitong:org-code|C01"):  # type: ignore[no-untyped-def]
    return parse_mapping_toml(MAPPING.replace("BATCH", str(batch)).replace("ORG", org))


def record(i: int, **over: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "sample": f"S{i}", "reported": "2024-03-05T10:00:00+08:00",
        "patient": {"id_card": f"11010119600305{i:04d}", "name": f"患者{i}",
                    "birth": "1960年3月5日"},
        "tests": [{"code": "GLU", "value": round(5.6 + i / 10, 1), "unit": "毫摩尔/升"}],
    }
    rec.update(over)
    return rec


def run(data: bytes, batch: int = 500) -> list[Conversion]:
    return list(convert_json(io.BytesIO(data), mapping(batch)))


def test_array_records_and_pointers() -> None:
    records = [record(1), record(2, tests=[{"code": "XYZ", "value": "x", "unit": "g"}]),
               "not an object", record(4)]
    [c] = run(json.dumps(records, ensure_ascii=False, indent=1).encode())
    assert (c.records, c.accepted) == (4, 2)
    problems = {(p.row, p.reason, p.pointer) for p in c.problems}
    assert problems == {
        (2, Reason.UNMAPPED_CODE, "/1/tests/0/code"),
        (2, Reason.BAD_NUMBER, "/1/tests/0/value"),
        (3, Reason.NOT_AN_OBJECT, "/2"),
    }
    [obs, _] = [e["resource"] for e in c.entries if e["resource"]["resourceType"] == "Observation"]
    assert obs["valueQuantity"]["code"] == "mmol/L" and obs["valueQuantity"]["unit"] == "毫摩尔/升"
    assert obs["code"]["coding"][0]["code"] == "15074-8"


def test_ndjson_skips_only_the_bad_line() -> None:
    lines = [json.dumps(record(1)), "{not json", json.dumps(record(3)), "", json.dumps(record(4))]
    [c] = run("\n".join(lines).encode())
    assert (c.records, c.accepted) == (4, 3)
    [bad] = c.problems
    assert (bad.row, bad.line, bad.reason) == (2, 2, Reason.BAD_RECORD)


def test_array_syntax_error_stops_with_a_problem() -> None:
    data = b'[' + json.dumps(record(1)).encode() + b', {"sample": }, ' + \
        json.dumps(record(3)).encode() + b"]"
    [c] = run(data)
    assert c.accepted == 1
    assert [(p.row, p.reason) for p in c.problems] == [(2, Reason.BAD_RECORD)]


def test_single_object_and_empty_array() -> None:
    [c] = run(json.dumps(record(1)).encode())
    assert (c.records, c.accepted) == (1, 1)
    assert run(b"  [ ]  ") == []


def test_large_array_is_streamed_in_batches() -> None:
    data = json.dumps([record(i) for i in range(5000)]).encode()
    batches = convert_json(io.BytesIO(data), mapping(1000))
    sizes = [(c.first_row, c.records, c.accepted) for c in batches]
    assert sizes == [(1 + k * 1000, 1000, 1000) for k in range(5)]


def test_json_bundles_post_idempotently(fhir: FhirServer) -> None:
    fhir.create(organization())
    data = "\n".join(json.dumps(record(i), ensure_ascii=False) for i in range(5)).encode()
    for _ in range(2):
        for c in run(data, batch=2):
            fhir.post_bundle(c.bundle)
    assert fhir.count("Patient?identifier=urn:oid:2.16.156.10011.1.3|") == 5 and fhir.count("Observation") == 5
    [p] = fhir.search("Patient?identifier=urn:oid:2.16.156.10011.1.3|110101196003050003")
    [o] = fhir.search(f"Observation?subject=Patient/{p['id']}")
    assert o["valueQuantity"]["value"] == 5.9 and o["issued"] == "2024-03-05T10:00:00+08:00"


def test_files_are_converted_by_suffix(tmp_path: Path) -> None:
    ndjson = tmp_path / "export.ndjson"
    ndjson.write_text("\n".join(json.dumps(record(i)) for i in range(3)))
    assert sum(c.accepted for c in convert_file(ndjson, mapping())) == 3
    with pytest.raises(ValueError) as caught:
        list(convert_file(tmp_path / "export.xlsx", mapping()))
    assert "xlsx" in caught.value.args[0] and caught.value.args[1]


def test_json_booleans_into_string_elements_read_as_fhir_writes_them() -> None:
    text = MAPPING.replace("BATCH", "10").replace("ORG", "Organization/1").replace(
        'element = "birthDate"\n  source = "patient.birth"',
        'element = "name[0].family"\n  source = "patient.flag"')
    [c] = list(convert_json(io.BytesIO(json.dumps(record(1, patient={
        "id_card": "1", "name": "x", "flag": True})).encode()), parse_mapping_toml(text)))
    [patient] = [e["resource"] for e in c.entries if e["resource"]["resourceType"] == "Patient"]
    assert patient["name"][0]["family"] == "true"


def test_records_inside_an_envelope_object() -> None:
    text = MAPPING.replace("BATCH", "10").replace("ORG", "Organization/1").replace(
        "batch_size = 10", 'batch_size = 10\nrecords = "data.items"')
    doc = {"code": 0, "msg": "成功", "data": {"items": [record(1), 7, record(3, sample="")]}}
    [c] = list(convert_json(io.BytesIO(json.dumps(doc).encode()), parse_mapping_toml(text)))
    assert (c.records, c.accepted) == (3, 1)
    assert {(p.row, p.reason, p.pointer) for p in c.problems} == {
        (2, Reason.NOT_AN_OBJECT, "/data/items/1"),
        (3, Reason.MISSING_VALUE, "/data/items/2/sample"),
    }
    [missing] = list(convert_json(io.BytesIO(b'{"data": {}}'), parse_mapping_toml(text)))
    assert missing.problems[0].pointer == "/data/items"


EACH = """
[feed]
name = "lab-report"
organization = "Organization/1"

[[resource]]
key = "patient"
type = "Patient"
mode = "update"
identifier = { system = "urn:huitong:mrn:C01", value = "{mrn}" }

[[resource]]
key = "result"
type = "Observation"
for_each = "tests"
only_if = "item.value"
identifier = { system = "urn:huitong:lab:C01", value = "{report}-{item.code}" }
  [[resource.field]]
  element = "status"
  value = "final"
  [[resource.field]]
  element = "code.coding[0]"
  source = "item.code"
  map = { GLU = { system = "http://loinc.org", code = "15074-8" }, HB = { system = "http://loinc.org", code = "718-7" } }
  [[resource.field]]
  element = "code.text"
  template = "{item#}. {item.name}"
  [[resource.field]]
  element = "subject"
  target = "patient"
  [[resource.field]]
  element = "valueQuantity"
  source = "item.value"
  unit_source = "item.unit"
"""


def test_one_resource_per_array_item() -> None:
    report = {"mrn": "M1", "report": "R9", "tests": [
        {"code": "GLU", "name": "葡萄糖", "value": 5.2, "unit": "mmol/L"},
        {"code": "HB", "name": "血红蛋白", "value": 135, "unit": "g/L"},
        {"code": "HB2", "name": "未送检"},  # no value: only_if skips it
    ]}
    [c] = list(convert_json(io.BytesIO(json.dumps(report).encode()), parse_mapping_toml(EACH)))
    assert c.problems == []
    obs = [e["resource"] for e in c.entries if e["resource"]["resourceType"] == "Observation"]
    assert [o["identifier"][0]["value"] for o in obs] == ["R9-GLU", "R9-HB"]
    assert [o["code"]["text"] for o in obs] == ["1. 葡萄糖", "2. 血红蛋白"]
    patient_url = next(e["fullUrl"] for e in c.entries
                       if e["resource"]["resourceType"] == "Patient")
    assert all(o["subject"]["reference"] == patient_url for o in obs)
    bad = {"mrn": "M1", "report": "R9", "tests": [
        {"code": "GLU", "value": 5.2, "unit": "mmol/L"}, {"code": "XX", "value": "?", "unit": "g"}]}
    [c] = list(convert_json(io.BytesIO(json.dumps([bad]).encode()), parse_mapping_toml(EACH)))
    assert {(p.reason, p.pointer) for p in c.problems} == {
        (Reason.UNMAPPED_CODE, "/0/tests/1/code"), (Reason.BAD_NUMBER, "/0/tests/1/value")}
    assert c.entries == []  # the record is rejected whole


def test_for_each_resources_cannot_be_reference_targets() -> None:
    text = EACH + """
[[resource]]
key = "report"
type = "DiagnosticReport"
identifier = { system = "urn:huitong:lab:C01", value = "{report}" }
  [[resource.field]]
  element = "result[0]"
  target = "result"
"""
    with pytest.raises(MappingError) as caught:
        parse_mapping_toml(text)
    assert [i.where for i in caught.value.issues] == ["resource[2].field[0].target"]


def test_translation_table_values_are_not_shared_between_resources() -> None:
    text = EACH.replace('''  [[resource.field]]
  element = "code.text"''', '''  [[resource.field]]
  element = "code.coding[0].display"
  source = "item.name"
  [[resource.field]]
  element = "code.text"''')
    mapping = parse_mapping_toml(text)
    report = {"mrn": "M1", "report": "R1", "tests": [
        {"code": "GLU", "name": "空腹血糖", "value": 5.2, "unit": "mmol/L"},
        {"code": "GLU", "name": "餐后血糖", "value": 7.9, "unit": "mmol/L"}]}
    report2 = {**report, "report": "R2"}
    convs = list(convert_json(io.BytesIO(json.dumps([report, report2]).encode()), mapping))
    displays = [e["resource"]["code"]["coding"][0]["display"] for c in convs for e in c.entries
                if e["resource"]["resourceType"] == "Observation"]
    assert displays == ["餐后血糖", "餐后血糖"]  # same identity R?-GLU: the later item wins
    assert mapping.resources[1].fields[1].map["GLU"] == {  # type: ignore[index]
        "system": "http://loinc.org", "code": "15074-8"}
