"""CSV feeds end to end: encodings, delimiters, quoting, bad rows, batching, streaming, and
the Bundles accepted by the real FHIR server, idempotently."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from feeds_samples import GOOD_ROWS, HEADER, bp_mapping, organization

import huitong.ingest.feeds as feeds
from fhir_test_client import FhirServer
from huitong.fhir.validation import validate_resource
from huitong.ingest.feeds import (
    Conversion,
    Reason,
    convert_csv,
    load_mapping,
    parse_mapping_toml,
)


def run(data: bytes, batch: int = 500, **feed: str) -> list[Conversion]:
    text = bp_mapping(batch)
    for k, v in feed.items():
        text = text.replace("[feed]\n", f'[feed]\n{k} = "{v}"\n', 1)
    return list(convert_csv(io.BytesIO(data), parse_mapping_toml(text)))


def resources(conversions: list[Conversion], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for c in conversions for e in c.entries
            if e["resource"]["resourceType"] == rtype]


def test_rows_become_idempotent_entries() -> None:
    [c] = run((HEADER + "".join(GOOD_ROWS)).encode())
    assert (c.records, c.accepted, c.problems) == (4, 4, [])
    patients = resources([c], "Patient")
    assert sorted(p["identifier"][0]["value"] for p in patients) == ["M001", "M002", "M003"]
    zhang = next(p for p in patients if p["identifier"][0]["value"] == "M001")
    assert zhang["birthDate"] == "1960-03-05" and zhang["gender"] == "male"
    obs = resources([c], "Observation")
    assert len(obs) == 3  # row 3 has no reading (only_if)
    li = next(o for o in obs if o["identifier"][0]["value"] == "R2-sbp")
    assert li["effectiveDateTime"] == "2024-03-05T09:00:00+08:00"
    assert li["valueQuantity"] == {"value": 128, "unit": "mm[Hg]",
                                   "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    by_url = {e["fullUrl"]: e for e in c.entries}
    assert by_url[li["subject"]["reference"]]["resource"]["identifier"][0]["value"] == "M002"
    for e in c.entries:
        validate_resource(e["resource"])
        method = e["request"]["method"]
        if e["resource"]["resourceType"] == "Patient":
            assert method == "PUT"
            assert e["request"]["url"].startswith("Patient?identifier=urn:huitong:mrn:C01|")
        else:
            assert method == "POST" and e["request"]["ifNoneExist"].startswith("identifier=")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_encodings_give_the_same_bundle(encoding: str) -> None:
    data = (HEADER + "".join(GOOD_ROWS)).encode(encoding)
    reference = run((HEADER + "".join(GOOD_ROWS)).encode())
    assert run(data) == reference
    assert run(data, encoding=encoding) == reference


@pytest.mark.parametrize("delimiter", ["\t", ";", "|"])
def test_delimiters_are_sniffed_or_declared(delimiter: str) -> None:
    rows = [HEADER.replace(",", delimiter), GOOD_ROWS[0].replace(",", delimiter),
            f'M002{delimiter}"李,四{delimiter}x"{delimiter}女{delimiter}1970/1/2{delimiter}R2'
            f"{delimiter}128{delimiter}2024-03-05 09:00\n"]
    data = "".join(rows).encode()
    for conv in (run(data), run(data, delimiter=delimiter)):
        assert conv[0].problems == []
        names = {p["name"][0]["text"] for p in resources(conv, "Patient")}
        assert names == {"张三", f"李,四{delimiter}x"}


def test_quoted_fields_with_newlines_and_quotes_keep_line_numbers() -> None:
    data = (HEADER + 'M009,"王""小""\n二",男,1990-01-01,R9,120,2024-03-05 08:00\n'
            "M010,赵六,男,1990-01-01,R10,abc,2024-03-05 08:00\n").encode()
    [c] = run(data)
    [name] = [p["name"][0]["text"] for p in resources([c], "Patient")]
    assert name == '王"小"\n二'
    [problem] = c.problems
    assert (problem.row, problem.line, problem.field) == (2, 4, "收缩压")


def test_bad_rows_are_reported_and_good_rows_kept() -> None:
    bad = [
        "M020,,男,1990-01-01,R20,120,2024-03-05 08:00\n",  # required name empty
        "M021,周七,X,1990-01-01,R21,120,2024-03-05 08:00\n",  # gender not in the map
        "M022,吴八,女,1990-02-30,R22,120,2024-03-05 08:00\n",  # no such date
        "M023,郑九,女,1990-01-01,R23,120,\n",  # required time empty
        "M024,冯十,女\n",  # short row
        ",无号,女,1990-01-01,R25,120,2024-03-05 08:00\n",  # no MRN: identity empty
        "M026,陈一,女,1990-01-01,R26,120,2024-03-05 08:00,extra\n",  # long row
    ]
    data = (HEADER + GOOD_ROWS[0] + "".join(bad) + GOOD_ROWS[1]).encode()
    [c] = run(data)
    assert (c.records, c.accepted) == (9, 2)
    got = {(p.row, p.reason, p.field) for p in c.problems}
    assert got == {
        (2, Reason.MISSING_VALUE, "姓名"),
        (3, Reason.UNMAPPED_CODE, "性别"),
        (4, Reason.BAD_DATE, "出生日期"),
        (5, Reason.MISSING_VALUE, "测量时间"),
        (6, Reason.BAD_RECORD, None),
        (7, Reason.MISSING_VALUE, "病历号"),
        (8, Reason.BAD_RECORD, None),
    }
    for p in c.problems:
        assert p.line == p.row + 1 and p.en and p.zh and p.severity == "error"
    assert {p["identifier"][0]["value"] for p in resources([c], "Patient")} == {"M001", "M002"}


def test_undecodable_bytes_spoil_only_their_row() -> None:
    data = (HEADER + GOOD_ROWS[0]).encode() + b"M030," + b"\xff\xfe" + \
        ",男,1990-01-01,R30,120,2024-03-05 08:00\n".encode() + GOOD_ROWS[1].encode()
    [c] = run(data, encoding="utf-8")
    assert [(p.row, p.reason) for p in c.problems] == [(2, Reason.BAD_ENCODING)]
    assert c.accepted == 2


def test_missing_columns_and_empty_files_are_file_problems() -> None:
    [c] = run("病历号,姓名\nM1,张三\n".encode())
    missing = {p.field for p in c.problems if p.row is None}
    assert missing == {"性别", "出生日期", "记录号", "收缩压", "测量时间"}
    [empty] = run(b"")
    assert empty.records == 0 and empty.problems[0].reason is Reason.BAD_RECORD


def test_duplicate_identity_in_a_batch_is_one_entry_with_a_warning() -> None:
    changed = GOOD_ROWS[0].replace("R1,135", "R1,150")
    [c] = run((HEADER + GOOD_ROWS[0] + changed).encode())
    [obs] = resources([c], "Observation")
    assert obs["valueQuantity"]["value"] == 150
    assert len(resources([c], "Patient")) == 1  # identical content: no warning for it
    [warning] = c.problems
    assert (warning.reason, warning.severity, warning.row) == (Reason.DUPLICATE, "warning", 2)


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.consumed += len(chunk)
        return chunk


def test_batches_are_streamed() -> None:
    rows = [f"M{i:06d},患者{i},男,1960-01-01,R{i},{100 + i % 50},2024-03-05 08:30\n"
            for i in range(30_000)]
    stream = CountingStream((HEADER + "".join(rows)).encode())
    batches = convert_csv(stream, parse_mapping_toml(bp_mapping(100)))
    first = next(batches)
    assert (first.records, first.first_row, len(first.entries)) == (100, 1, 200)
    assert stream.consumed < len(stream.getvalue()) // 4  # the file was not read whole
    second = next(batches)
    assert second.first_row == 101


def test_bundles_post_to_the_server_idempotently(fhir: FhirServer) -> None:
    fhir.create(organization())
    data = (HEADER + "".join(GOOD_ROWS)).encode()
    for _ in range(2):  # re-importing the same file creates nothing new
        for conv in run(data, batch=2):
            fhir.post_bundle(conv.bundle)
        assert fhir.count("Patient?identifier=urn:huitong:mrn:C01|") == 3
        assert fhir.count("Observation") == 3
    [zhang] = fhir.search("Patient?identifier=urn:huitong:mrn:C01|M001")
    assert zhang["managingOrganization"]["reference"].startswith("Organization/")
    obs = fhir.search(f"Observation?subject=Patient/{zhang['id']}")
    assert sorted(o["valueQuantity"]["value"] for o in obs) == [135, 141]
    assert all(o["performer"][0]["reference"].startswith("Organization/") for o in obs)


def test_gb18030_after_an_ascii_start_is_recovered_with_one_warning() -> None:
    mapping = parse_mapping_toml("""
[feed]
name = "ascii-headers"
organization = "Organization/1"
batch_size = 5000
[[resource]]
key = "patient"
type = "Patient"
identifier = { system = "urn:huitong:mrn:C01", value = "{mrn}" }
  [[resource.field]]
  element = "name[0].text"
  source = "name"
""")
    ascii_rows = "".join(f"M{i:06d},Patient number {i:06d} of the clinic\n" for i in range(2000))
    data = (b"mrn,name\n" + ascii_rows.encode() + "M9001,张三\nM9002,\"李,四\"\n".encode("gb18030"))
    assert len(data) > 64 * 1024  # the guess, from the first 64 KiB, is UTF-8
    [c] = list(convert_csv(io.BytesIO(data), mapping))
    assert c.accepted == 2002
    [warning] = c.problems
    assert (warning.reason, warning.severity, warning.row) == (Reason.BAD_ENCODING, "warning",
                                                              2001)
    names = [p["name"][0]["text"] for p in resources([c], "Patient")][-2:]
    assert names == ["张三", "李,四"]


def test_the_shipped_example_mapping_converts_its_sample(fhir: FhirServer) -> None:
    example = Path(feeds.__file__).parent / "examples" / "community_bp.toml"
    mapping = load_mapping(example)
    data = ("随访编号,病历号,身份证号,姓名,性别,出生日期,收缩压,舒张压,心率,随访时间\n"
            "F1,M1,110101196003050012,张三,男,1960年3月5日,142,91,78,2024年3月5日 9:15\n"
            "F2,M1,110101196003050012,张三,男,1960年3月5日,135,85,,2024年4月5日 9:20\n"
            ).encode("gb18030")
    [c] = list(convert_csv(io.BytesIO(data), mapping))
    assert (c.accepted, c.problems) == (2, [])
    fhir.create(organization())
    fhir.post_bundle(c.bundle)
    assert fhir.count("Patient?identifier=urn:huitong:mrn:C01|") == 1
    assert fhir.count("Observation") == 3
    [p] = fhir.search("Patient?identifier=urn:oid:2.16.156.10011.1.3|110101196003050012")
    assert p["birthDate"] == "1960-03-05"


def test_duplicate_header_columns_are_a_warning() -> None:
    data = (HEADER.rstrip("\n") + ",姓名\n" + GOOD_ROWS[0].rstrip("\n") + ",别名\n").encode()
    [c] = run(data)
    [warning] = c.problems
    assert (warning.field, warning.severity, warning.row) == ("姓名", "warning", None)
    assert resources([c], "Patient")[0]["name"][0]["text"] == "张三"


def test_validation_can_be_left_to_the_write() -> None:
    data = (HEADER + "".join(GOOD_ROWS)).encode()
    mapping = parse_mapping_toml(bp_mapping())
    checked = list(convert_csv(io.BytesIO(data), mapping))
    optimistic = list(convert_csv(io.BytesIO(data), mapping, validate=False))
    assert optimistic == checked
    # a value only the FHIR validator catches: a code with a double space
    broken = parse_mapping_toml(bp_mapping().replace('"男" = "male"', '"男" = "ma  le"'))
    [strict] = list(convert_csv(io.BytesIO(data), broken))
    assert {(p.row, p.reason) for p in strict.problems} == {
        (1, Reason.INVALID_RESOURCE), (3, Reason.INVALID_RESOURCE), (4, Reason.INVALID_RESOURCE)}
    assert strict.accepted == 1
    [loose] = list(convert_csv(io.BytesIO(data), broken, validate=False))
    assert loose.problems == [] and loose.accepted == 4
