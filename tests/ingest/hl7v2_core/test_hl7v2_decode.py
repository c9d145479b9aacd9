"""Decoding: BOM, segment terminators, MSH-18 character sets, fallbacks, errors as data."""

from __future__ import annotations

import pytest

from huitong.ingest.hl7v2 import Condition, Hl7v2Error, decode_message, parse
from huitong.ingest.hl7v2.charsets import codec_for_charset

ADT = (
    "MSH|^~\\&|HIS|{facility}|HUITONG|区域平台|20240101120000+0800||ADT^A01^ADT_A01|CN0001|P|2.5.1"
    "|||AL|AL||{charset}\r"
    "EVN|A01|20240101120000\r"
    "PID|1||110101199003074518^^^^RRN||{name}||19900307|M\r"
)


def _char_with_trail(byte: bytes) -> str:
    """A CJK character whose GB 18030 encoding has ``byte`` as its trail byte: such
    characters break any reader that splits raw bytes on separators."""
    for cp in range(0x4E00, 0x9FA6):
        ch = chr(cp)
        if ch.encode("gb18030")[1:] == byte:
            return ch
    raise AssertionError("no such character")


def chinese_adt(charset: str = "GB 18030-2000") -> str:
    tricky = _char_with_trail(b"|") + _char_with_trail(b"^")
    return ADT.format(facility=f"北京{tricky}医院", charset=charset, name=f"张^伟{tricky}")


def test_bom_and_terminators_parse_identically() -> None:
    base = "MSH|^~\\&|A|B|C|D|20240101||ADT^A04|1|P|2.5\rPID|1||X^^^H^MR||Doe^Jane\rPV1|1|O"
    variants = [
        base.encode(),
        base.replace("\r", "\n").encode(),
        base.replace("\r", "\r\n").encode(),
        b"\xef\xbb\xbf" + base.replace("\r", "\n").encode() + b"\n\n\n",
        b"\r\n" + base.encode() + b"\r\r",
        base.replace("\r", "\n\n").encode(),  # blank lines between segments
    ]
    parsed = [parse(v) for v in variants]
    assert {p.decoded.text for p in parsed} == {base + "\r"}
    assert {str(p.message) for p in parsed} == {str(parsed[0].message)}
    assert parsed[0].segment_ids == ["MSH", "PID", "PV1"]


@pytest.mark.parametrize(
    ("charset", "codec"),
    [
        ("ASCII", "ascii"),
        ("8859/1", "latin-1"),
        ("8859/15", "iso8859-15"),
        ("UNICODE UTF-8", "utf-8"),
        ("UTF-8", "utf-8"),
        ("utf8", "utf-8"),
        ("GB 18030-2000", "gb18030"),
        ("GB18030", "gb18030"),
        ("GBK", "gb18030"),
        ("GB2312", "gb18030"),
        ("CNS 11643-1992", "big5"),
        ("BIG-5", "big5"),
        ("KS X 1001", "euc_kr"),
        ("EBCDIC", None),
        ("UNICODE UTF-16", None),
    ],
)
def test_charset_table(charset: str, codec: str | None) -> None:
    assert codec_for_charset(charset) == codec


def test_gb18030_message_with_chinese_names_round_trips() -> None:
    text = chinese_adt()
    raw = text.encode("gb18030")
    assert b"|" in text.split("|")[3].encode("gb18030")  # the facility really has a '|' byte
    parsed = parse(raw)
    assert parsed.codec == "gb18030"
    assert not parsed.decoded.fallback
    assert parsed.header.charset == "GB 18030-2000"
    assert parsed.header.sending_facility.namespace_id == text.split("|")[3]
    pid = parsed.message.segment("PID")
    assert str(pid[5]) == text.split("\r")[2].split("|")[5]
    assert str(pid[5][0][0]) == "张"
    assert parsed.decoded.text.encode("gb18030") == raw


@pytest.mark.parametrize("charset", ["GBK", "GB2312"])
def test_gbk_declarations_are_read_as_gb18030(charset: str) -> None:
    raw = ADT.format(facility="医院", charset=charset, name="王^芳").encode("gbk")
    parsed = parse(raw)
    assert parsed.codec == "gb18030"
    assert str(parsed.message.segment("PID")[5]) == "王^芳"


def test_empty_charset_is_utf8_without_warning() -> None:
    parsed = parse(ADT.format(facility="医院", charset="", name="张^伟").encode("utf-8"))
    assert parsed.codec == "utf-8"
    assert parsed.warnings == ()
    assert not parsed.decoded.fallback


def test_empty_charset_falls_back_to_gb18030_with_a_warning() -> None:
    parsed = parse(chinese_adt(charset="").encode("gb18030"))
    assert parsed.codec == "gb18030"
    assert parsed.decoded.fallback
    (warning,) = parsed.warnings
    assert warning.severity.value == "W"
    assert (warning.location.segment_id, warning.location.field) == ("MSH", 18)
    assert str(parsed.message.segment("PID")[5][0][0]) == "张"


def test_declared_charset_that_does_not_fit_falls_back_with_a_warning() -> None:
    raw = ADT.format(facility="医院", charset="ASCII", name="张^伟").encode("utf-8")
    parsed = parse(raw)
    assert parsed.codec == "utf-8"
    assert parsed.decoded.fallback
    assert "ascii" in parsed.warnings[0].en


def test_best_effort_charset_warns() -> None:
    text = ADT.format(facility="醫院", charset="CNS 11643-1992", name="陳^大文")
    raw = text.replace("区域平台", "區域平臺").encode("big5")
    parsed = parse(raw)
    assert parsed.codec == "big5"
    assert str(parsed.message.segment("PID")[5]) == "陳^大文"
    assert parsed.warnings and "best effort" in parsed.warnings[0].en


def test_unknown_charset_is_an_error_that_still_has_a_header() -> None:
    raw = ADT.format(facility="H", charset="EBCDIC", name="Doe^J").encode()
    with pytest.raises(Hl7v2Error) as caught:
        decode_message(raw)
    error = caught.value
    assert error.condition is Condition.TABLE_VALUE_NOT_FOUND
    assert (error.issues[0].location.segment_id, error.issues[0].location.field) == ("MSH", 18)
    assert error.header.control_id == "CN0001"
    assert error.issues[0].zh


def test_undecodable_bytes_are_an_error() -> None:
    raw = b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|9|P|2.5\rPID|1||\x80\xff\x80\xff\r"
    with pytest.raises(Hl7v2Error) as caught:
        decode_message(raw)
    assert caught.value.condition is Condition.DATA_TYPE
    assert caught.value.header.control_id == "9"


@pytest.mark.parametrize(
    ("raw", "condition", "field"),
    [
        (b"", Condition.SEGMENT_SEQUENCE, 0),
        (b"PID|1\rMSH|^~\\&|A\r", Condition.SEGMENT_SEQUENCE, 0),
        (b"BHS|^~\\&|A\rMSH|^~\\&|A\r", Condition.SEGMENT_SEQUENCE, 0),
        (b"MSH", Condition.DATA_TYPE, 1),
        (b"MSHA^~\\&|", Condition.DATA_TYPE, 1),
        (b"MSH||A|B", Condition.DATA_TYPE, 2),
        (b"MSH|^^\\&|A|B", Condition.DATA_TYPE, 2),
        (b"MSH|^~x&|A|B", Condition.DATA_TYPE, 2),
        (b"MSH|^~|A|B", Condition.DATA_TYPE, 2),
        (b"MSH&\\", Condition.DATA_TYPE, 2),
    ],
)
def test_unreadable_headers_are_errors(raw: bytes, condition: Condition, field: int) -> None:
    with pytest.raises(Hl7v2Error) as caught:
        decode_message(raw)
    assert caught.value.condition is condition
    assert caught.value.issues[0].location.field == field
    assert caught.value.header.control_id == ""
