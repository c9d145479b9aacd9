"""Acknowledgements as tables: which ACKs (MSH-15/16 × outcome), codes, ERR layout per version,
addressing, separators and the sender's character set."""

from __future__ import annotations

import dataclasses

import pytest

from huitong.fhir.errors import Category, FhirError
from huitong.ingest.hl7v2 import (
    Ack,
    AckCode,
    Condition,
    ErrorLocation,
    Hl7v2Error,
    Hl7v2Issue,
    MessageHeader,
    Outcome,
    Severity,
    ack_plan,
    build_ack,
    build_acks,
    issue_from_fhir_error,
    parse,
    read_header,
)
from huitong.ingest.hl7v2.errors import CONDITION_CATEGORY

CLOCK = lambda: 1_700_000_000_000_000  # noqa: E731  (a fixed clock: 2023-11-14T22:13:20Z)

UNSUPPORTED = Hl7v2Issue(Condition.UNSUPPORTED_MESSAGE_TYPE, "not mapped", "未映射")
INVALID = Hl7v2Issue(Condition.DATA_TYPE, "bad", "错误", ErrorLocation("PID", 1, 7))
DB_DOWN = issue_from_fhir_error(FhirError(Category.UNAVAILABLE, "database unavailable"))

OUTCOMES = {
    "ok": Outcome.processed(),
    "rejected-stored": Outcome.failed((UNSUPPORTED,), stored=True),
    "invalid-not-stored": Outcome.failed((INVALID,), stored=False),
    "transient-not-stored": Outcome.failed((DB_DOWN,), stored=False),
    "transient-stored": Outcome.failed((DB_DOWN,), stored=True),
}


def _header(accept: str = "", app: str = "", version: str = "2.5.1") -> MessageHeader:
    return read_header(
        f"MSH|^~\\&|LIS|LAB^1.2.3^ISO|HUITONG|HIE|20240101||ORU^R01^ORU_R01|CTRL-1|P|{version}"
        f"|||{accept}|{app}"
    )


def _new_ids() -> object:
    return iter(f"ACK{n}" for n in range(100)).__next__


@pytest.mark.parametrize(
    ("accept", "app", "outcome", "expected"),
    [
        # original mode: one application ACK, always
        ("", "", "ok", (None, "AA")),
        ("", "", "rejected-stored", (None, "AR")),
        ("", "", "invalid-not-stored", (None, "AR")),
        ("", "", "transient-not-stored", (None, "AE")),
        ("", "", "transient-stored", (None, "AE")),
        # enhanced mode, AL/AL
        ("AL", "AL", "ok", ("CA", "AA")),
        ("AL", "AL", "rejected-stored", ("CA", "AR")),
        ("AL", "AL", "invalid-not-stored", ("CR", None)),
        ("AL", "AL", "transient-not-stored", ("CE", None)),
        ("AL", "AL", "transient-stored", ("CA", "AE")),
        # NE never, ER only on error, SU only on success
        ("NE", "AL", "ok", (None, "AA")),
        ("NE", "AL", "transient-not-stored", (None, None)),
        ("NE", "NE", "rejected-stored", (None, None)),
        ("ER", "ER", "ok", (None, None)),
        ("ER", "ER", "rejected-stored", (None, "AR")),
        ("ER", "ER", "transient-not-stored", ("CE", None)),
        ("ER", "ER", "transient-stored", (None, "AE")),
        ("SU", "SU", "ok", ("CA", "AA")),
        ("SU", "SU", "rejected-stored", ("CA", None)),
        ("SU", "SU", "invalid-not-stored", (None, None)),
        ("AL", "NE", "ok", ("CA", None)),
        # enhanced mode with one field empty: the empty one reads as AL
        ("AL", "", "ok", ("CA", "AA")),
        ("", "ER", "ok", ("CA", None)),
        ("", "ER", "rejected-stored", ("CA", "AR")),
    ],
)
def test_ack_plan(accept: str, app: str, outcome: str, expected: tuple[str | None, ...]) -> None:
    plan = ack_plan(_header(accept, app), OUTCOMES[outcome])
    got = (plan.accept.value if plan.accept else None,
           plan.application.value if plan.application else None)
    assert got == expected
    acks = build_acks(_header(accept, app), OUTCOMES[outcome], clock=CLOCK, new_id=_new_ids())
    assert [a.code.value for a in acks] == [c for c in expected if c]


@pytest.mark.parametrize("condition", list(Condition)[1:])
def test_condition_codes_follow_category_info(condition: Condition) -> None:
    issue = Hl7v2Issue(condition, "x", "x")
    code = Outcome.failed((issue,), stored=True).application_code
    expected = "AR" if CONDITION_CATEGORY[condition] in (
        Category.INVALID, Category.NOT_SUPPORTED) else "AE"
    assert code.value == expected
    assert (condition.value[0] == "1" or condition.value in ("200", "201", "202", "203")) == (
        expected == "AR")


@pytest.mark.parametrize(
    ("category", "condition", "code"),
    [
        (Category.UNAVAILABLE, Condition.APPLICATION_INTERNAL_ERROR, AckCode.AE),
        (Category.INTERNAL, Condition.APPLICATION_INTERNAL_ERROR, AckCode.AE),
        (Category.TOO_MANY_REQUESTS, Condition.APPLICATION_INTERNAL_ERROR, AckCode.AE),
        (Category.CONFLICT, Condition.DUPLICATE_KEY_IDENTIFIER, AckCode.AE),
        (Category.NOT_FOUND, Condition.UNKNOWN_KEY_IDENTIFIER, AckCode.AE),
        (Category.INVALID, Condition.DATA_TYPE, AckCode.AR),
        (Category.UNPROCESSABLE, Condition.DATA_TYPE, AckCode.AR),
        (Category.NOT_SUPPORTED, Condition.UNSUPPORTED_MESSAGE_TYPE, AckCode.AR),
    ],
)
def test_fhir_error_categories(category: Category, condition: Condition, code: AckCode) -> None:
    issue = issue_from_fhir_error(FhirError(category, "why"))
    assert issue.condition is condition
    assert issue.en == "why" and issue.zh
    assert Outcome.failed((issue,), stored=True).application_code is code


def test_a_reject_outweighs_a_transient_error_and_warnings_do_not_count() -> None:
    warning = dataclasses.replace(INVALID, severity=Severity.WARNING)
    assert Outcome.failed((DB_DOWN, UNSUPPORTED), stored=True).application_code is AckCode.AR
    assert Outcome.processed((warning,)).application_code is AckCode.AA


def _fields(ack: Ack, segment: str) -> list[list[str]]:
    return [[str(f) for f in seg] for seg in ack.message.segments(segment)]


@pytest.mark.parametrize(
    ("version", "legacy"),
    [("2.3", True), ("2.3.1", True), ("2.4", True), ("2.5", False), ("2.5.1", False),
     ("2.6", False), ("2.7", False), ("2.7.1", False), ("2.8", False)],
)
def test_err_layout_per_version(version: str, legacy: bool) -> None:
    header = _header(version=version)
    issues = (INVALID, UNSUPPORTED, dataclasses.replace(DB_DOWN, severity=Severity.WARNING))
    ack = build_ack(header, AckCode.AR, issues, clock=CLOCK, new_id=lambda: "A1")
    errs = _fields(ack, "ERR")
    msa = _fields(ack, "MSA")[0]
    assert msa[1:3] == ["AR", "CTRL-1"]
    if legacy:
        assert errs == [
            ["ERR", "PID^1^7^102&Data type error&HL70357"],
            ["ERR", "^^^200&Unsupported message type&HL70357"],
        ]
        assert msa[3] == "bad / 错误; not mapped / 未映射"
        assert msa[6] == "102^Data type error^HL70357"
    else:
        assert errs == [
            ["ERR", "", "PID^1^7", "102^Data type error^HL70357", "E", "", "", "", "bad / 错误"],
            ["ERR", "", "", "200^Unsupported message type^HL70357", "E", "", "", "",
             "not mapped / 未映射"],
            ["ERR", "", "", "207^Application internal error^HL70357", "W", "", "", "",
             "database unavailable / 服务暂不可用，请稍后重发"],
        ]
        assert len(msa) == 3


def test_ack_header_swaps_addresses_and_keeps_version_and_mode() -> None:
    header = _header("AL", "AL", version="2.3")
    ack = build_ack(header, AckCode.CA, clock=CLOCK, new_id=lambda: "ACK-42")
    msh = ack.message.segment("MSH")
    assert [str(msh[n]) for n in range(3, 13)] == [
        "HUITONG", "HIE", "LIS", "LAB^1.2.3^ISO", "20231114221320.0000+0000", "", "ACK^R01",
        "ACK-42", "P", "2.3"]
    assert (str(msh[15]), str(msh[16])) == ("NE", "NE")
    assert ack.control_id == "ACK-42"
    v25 = build_ack(_header(version="2.5"), AckCode.AA, clock=CLOCK, new_id=lambda: "x")
    assert str(v25.message.segment("MSH")[9]) == "ACK^R01^ACK"
    assert len(v25.message.segment("MSH")) == 13  # original mode: no MSH-15/16


def test_ack_uses_the_inbound_separators_and_escapes_text() -> None:
    raw = b"MSH#$*!@#A#B#C#D#2024##ADT$A01#X!F!1#P#2.6\rPID#1##9$$$H\r"
    parsed = parse(raw)
    assert parsed.header.control_id == "X#1"
    issue = Hl7v2Issue(Condition.DATA_TYPE, "bad # and $ and * here", "坏", ErrorLocation("PID", 1))
    ack = build_ack(parsed.header, AckCode.AE, (issue,), clock=CLOCK, new_id=lambda: "k")
    assert ack.text.startswith("MSH#$*!@#C#D#A#B#")
    assert "MSA#AE#X!F!1\r" in ack.text
    err = ack.message.segment("ERR")
    assert len(err) == 9
    assert ack.message.unescape(str(err[8])) == "bad # and $ and * here / 坏"


def test_ack_for_a_gb18030_message_is_gb18030() -> None:
    text = ("MSH|^~\\&|HIS|北京协和医院|HUITONG|区域平台|20240101||ADT^A01^ADT_A01|CN1|P|2.5.1"
            "|||||GB 18030-2000\rPID|1||X||张^伟\r")
    parsed = parse(text.encode("gb18030"))
    issue = Hl7v2Issue(Condition.DATA_TYPE, "bad", "数据类型错误", ErrorLocation("PID", 1, 5))
    ack = build_ack(parsed.header, AckCode.AE, (issue,), clock=CLOCK, new_id=lambda: "k",
                    codec=parsed.codec)
    raw = ack.encode()
    assert raw == ack.text.encode("gb18030")
    back = parse(raw)
    assert back.codec == "gb18030" and not back.decoded.fallback
    assert back.header.charset == "GB 18030-2000"
    assert back.header.receiving_facility.namespace_id == "北京协和医院"
    assert back.header.sending_facility.namespace_id == "区域平台"
    assert "数据类型错误" in str(back.message.segment("ERR")[8])


def test_ack_after_a_gb18030_fallback_declares_gb18030() -> None:
    text = "MSH|^~\\&|HIS|医院|HUITONG|平台|20240101||ADT^A01|CN2|P|2.5.1\rPID|1||X||张^伟\r"
    parsed = parse(text.encode("gb18030"))
    assert parsed.decoded.fallback
    ack = build_acks(parsed.header, Outcome.processed(parsed.warnings), clock=CLOCK,
                     new_id=lambda: "k", codec=parsed.codec)[0]
    back = parse(ack.encode())
    assert back.header.charset == "GB 18030-2000"
    assert back.codec == "gb18030"
    assert back.header.receiving_facility.namespace_id == "医院"
    (warning,) = back.message.segments("ERR")
    assert str(warning[4]) == "W"


def test_ascii_sender_gets_an_english_only_ack() -> None:
    parsed = parse(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5||||||ASCII\rPID|1\r")
    ack = build_ack(parsed.header, AckCode.AR, (UNSUPPORTED,), clock=CLOCK, new_id=lambda: "k",
                    codec=parsed.codec)
    assert ack.encode().decode("ascii").endswith("|not mapped\r")
    assert ack.message.segment("MSH")[18][0] == "ASCII"


def test_ack_can_be_built_from_an_error_without_a_readable_header() -> None:
    with pytest.raises(Hl7v2Error) as caught:
        parse(b"\x00\x01garbage")
    error = caught.value
    acks = build_acks(error.header, Outcome.failed(error.issues, stored=True), clock=CLOCK,
                      new_id=lambda: "k", codec=error.codec)
    (ack,) = acks
    assert ack.code is AckCode.AR
    msh = ack.message.segment("MSH")
    assert str(msh[12]) == "2.8"
    assert [str(f) for f in ack.message.segment("MSA")] == ["MSA", "AR"]
    assert "100^Segment sequence error^HL70357" in ack.text
