"""The header as data, the structural checks, and every shared sample through parse + ACK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import hl7
import pytest

from huitong.ingest.hl7v2 import (
    AckCode,
    Condition,
    Hl7v2Error,
    Outcome,
    build_acks,
    check_header,
    parse,
    read_header,
)
from huitong.ingest.hl7v2.dtm import format_dtm, parse_dtm
from huitong_testdata import HL7V2_SAMPLES


def _samples() -> list[Path]:
    files = sorted(HL7V2_SAMPLES.glob("*.hl7"))
    if not files:
        pytest.skip(f"shared HL7 v2 samples not found at {HL7V2_SAMPLES}")
    return files


def _ids() -> list[str]:
    return ["ack-1", "ack-2", "ack-3"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ADT-A01-01.hl7", dict(
            code="ADT", trigger="A01", structure="ADT_A01", control="MSG00001", proc="P",
            version="2.8", accept="", app="", charset="", sending="ADTApp",
            facility_uid="2.16.840.1.122848.1.30", receiving="EHRApp")),
        ("MDM-T02-03.hl7", dict(
            code="MDM", trigger="T02", structure="MDM_T02", control="112", proc="T",
            version="2.3", accept="AL", app="", charset="ASCII", sending="SIMHOSP",
            facility_uid="", receiving="RAPP")),
        ("OUL-R22-01.hl7", dict(
            code="OUL", trigger="R22", structure="OUL_R22", control="1932", proc="P",
            version="2.8", accept="NE", app="AL", charset="UNICODE UTF-8",
            sending="CASECENTER", facility_uid="", receiving="IHEPALM")),
        ("PC1-Problem-Add-v2.3.1.hl7", dict(
            code="PPR", trigger="PC1", structure="", control="331", proc="P",
            version="2.3.1", accept="", app="", charset="", sending="",
            facility_uid="", receiving="")),
        ("IZ_1_1.1_Admin_Child_Max_Message.hl7", dict(
            code="VXU", trigger="V04", structure="VXU_V04", control="NIST-IZ-001.00",
            proc="P", version="2.5.1", accept="AL", app="ER", charset="",
            sending="Test EHR Application", facility_uid="", receiving="")),
    ],
)
def test_sample_headers(name: str, expected: dict[str, str]) -> None:
    path = HL7V2_SAMPLES / name
    if not path.exists():
        pytest.skip(f"shared HL7 v2 sample {path} not found")
    header = parse(path.read_bytes()).header
    got = dict(
        code=header.message_code, trigger=header.trigger_event,
        structure=header.message_structure, control=header.control_id,
        proc=header.processing_id, version=header.version, accept=header.accept_ack_type,
        app=header.application_ack_type, charset=header.charset,
        sending=header.sending_application.namespace_id,
        facility_uid=header.sending_facility.universal_id,
        receiving=header.receiving_application.namespace_id,
    )
    assert got == expected


def test_every_sample_parses_and_is_acknowledged() -> None:
    files = _samples()
    assert len(files) == 139
    for path in files:
        raw = path.read_bytes()
        parsed = parse(raw)
        assert isinstance(parsed.message, hl7.Message)
        assert parsed.segment_ids[0] == "MSH"
        assert len(parsed.message) == len([ln for ln in raw.splitlines() if ln.strip()])
        acks = build_acks(parsed.header, Outcome.processed(), clock=lambda: 0,
                          new_id=iter(_ids()).__next__, codec=parsed.codec)
        expected = [AckCode.AA] if not parsed.header.enhanced_mode else [
            c for c, cond in ((AckCode.CA, parsed.header.accept_ack_type),
                              (AckCode.AA, parsed.header.application_ack_type))
            if cond in ("", "AL", "SU")
        ]
        assert [a.code for a in acks] == expected, path.name
        for ack in acks:
            msa = ack.message.segment("MSA")
            assert str(msa[2]) == parsed.header.control_id, path.name
            assert ack.message.segment("MSH")[12][0] == parsed.header.version


def test_header_reads_composites_and_escapes() -> None:
    header = read_header(
        "MSH|^~\\&|APP\\T\\X^1.2.3^ISO|FAC||REC|20240102030405.12+0800||ORU^R01^ORU_R01|"
        "C\\F\\1|P^T|2.5.1^CHN&&HL70399|||al|su||GB 18030-2000~UNICODE UTF-8"
    )
    assert header.sending_application.namespace_id == "APP&X"
    assert header.sending_application.raw == "APP\\T\\X^1.2.3^ISO"
    assert header.control_id == "C|1"
    assert header.processing_id == "P"
    assert header.version == "2.5.1"
    assert (header.accept_ack_type, header.application_ack_type) == ("AL", "SU")
    assert header.charset == "GB 18030-2000"
    assert header.message_type == "ORU^R01"
    assert header.enhanced_mode
    assert header.timestamp == datetime(2024, 1, 2, 3, 4, 5, 120000,
                                        tzinfo=timezone(timedelta(hours=8)))
    assert check_header(header) == []


@pytest.mark.parametrize(
    ("msh", "expected"),
    [
        ("MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.3", []),
        ("MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.8", []),
        ("MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.2", [(Condition.UNSUPPORTED_VERSION_ID, 12)]),
        ("MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|3.0", [(Condition.UNSUPPORTED_VERSION_ID, 12)]),
        ("MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|X|2.5", [(Condition.UNSUPPORTED_PROCESSING_ID, 11)]),
        ("MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|T|2.5|||XX", [(Condition.TABLE_VALUE_NOT_FOUND, 15)]),
        ("MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|T|2.5||||YY",
         [(Condition.TABLE_VALUE_NOT_FOUND, 16)]),
        ("MSH|^~\\&|A|B|C|D|2024|||1|P|2.5", [(Condition.REQUIRED_FIELD_MISSING, 9)]),
        ("MSH|^~\\&|A|B|C|D|2024||ADT^A01",
         [(Condition.REQUIRED_FIELD_MISSING, 10), (Condition.REQUIRED_FIELD_MISSING, 11),
          (Condition.REQUIRED_FIELD_MISSING, 12)]),
    ],
)
def test_check_header(msh: str, expected: list[tuple[Condition, int]]) -> None:
    issues = check_header(read_header(msh))
    assert [(i.condition, i.location.field) for i in issues] == expected
    assert all(i.en and i.zh for i in issues)


def test_structure_errors_are_collected_with_locations() -> None:
    raw = b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|77|P|2.2\rPID|1\rpid|2\rcontinued note text\rMSH|^~\\&|X\r"
    with pytest.raises(Hl7v2Error) as caught:
        parse(raw)
    error = caught.value
    got = [(i.condition, str(i.location)) for i in error.issues]
    assert got == [
        (Condition.UNSUPPORTED_VERSION_ID, "MSH-1-12"),
        (Condition.SEGMENT_SEQUENCE, "3"),
        (Condition.SEGMENT_SEQUENCE, "4"),
        (Condition.SEGMENT_SEQUENCE, "MSH-2"),
    ]
    assert "continued" not in str(error)  # message content is never echoed
    assert error.header.control_id == "77"


def test_z_segments_are_kept() -> None:
    parsed = parse(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID|1\rZPI|1|custom^value\rPV1|1\r")
    assert parsed.segment_ids == ["MSH", "PID", "ZPI", "PV1"]
    (zpi,) = parsed.z_segments
    assert str(zpi[2]) == "custom^value"
    assert "ZPI|1|custom^value" in parsed.decoded.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024", datetime(2024, 1, 1)),
        ("202403151230", datetime(2024, 3, 15, 12, 30)),
        ("20240315123045.1234-0500", datetime(2024, 3, 15, 12, 30, 45, 123400,
                                              tzinfo=timezone(timedelta(hours=-5)))),
        ("20240230", None),
        ("2024x", None),
        ("", None),
    ],
)
def test_parse_dtm(value: str, expected: datetime | None) -> None:
    assert parse_dtm(value) == expected


def test_format_dtm_round_trips() -> None:
    micros = 1_700_000_000_123_400
    text = format_dtm(micros)
    assert text == "20231114221320.1234+0000"
    assert parse_dtm(text) == datetime(2023, 11, 14, 22, 13, 20, 123400, tzinfo=UTC)
