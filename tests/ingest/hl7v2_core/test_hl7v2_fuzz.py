"""Fuzzing the decoder and parser: only Hl7v2Error ever escapes, and an ACK can always be built."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import huitong.ingest.hl7v2 as hl7v2_package
from huitong.ingest.hl7v2 import Hl7v2Error, Outcome, ParsedMessage, build_acks, parse

VALID = (
    "MSH|^~\\&|HIS|医院|HUITONG|HIE|20240101120000+0800||ORU^R01^ORU_R01|C1|P|2.5.1|||AL|AL\r"
    "PID|1||123^^^H^MR||张^伟||19900307|M\r"
    "OBR|1|||718-7^Hemoglobin^LN\r"
    "OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL|12-16|N|||F\r"
).encode()

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _always_acknowledged(raw: bytes) -> None:
    try:
        result: ParsedMessage | Hl7v2Error = parse(raw)
    except Hl7v2Error as error:
        result = error
        outcome = Outcome.failed(error.issues, stored=True)
    else:
        outcome = Outcome.processed(result.warnings)
    acks = build_acks(result.header, outcome, clock=lambda: 0, new_id=lambda: "k",
                      codec=result.codec)
    for ack in acks:
        ack.encode()
        assert ack.message.segment("MSA")[1][0] == ack.code.value


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes(raw: bytes) -> None:
    _always_acknowledged(raw)


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_after_an_msh_prefix(tail: bytes) -> None:
    _always_acknowledged(b"MSH|^~\\&|" + tail)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID)), st.integers(0, 3), st.binary(max_size=4)),
                max_size=6))
def test_mutated_valid_message(edits: list[tuple[int, int, bytes]]) -> None:
    raw = bytearray(VALID)
    for position, delete, insert in edits:
        raw[position:position + delete] = insert
    _always_acknowledged(bytes(raw))


@FUZZ
@given(st.text(alphabet=st.sampled_from("|^~\\&\r\nMSHPIDZ0123 张"), max_size=120))
def test_separator_soup(text: str) -> None:
    _always_acknowledged(("MSH|^~\\&|" + text).encode("utf-8"))
    _always_acknowledged(text.encode("gb18030"))


def test_public_surface_is_explicit() -> None:
    exported = set(hl7v2_package.__all__)
    assert exported == {n for n in exported if hasattr(hl7v2_package, n)}
    assert "mapping" not in exported
    assert {"parse", "decode_message", "build_ack", "build_acks", "ack_plan",
            "Hl7v2Error", "MessageHeader", "ParsedMessage"} <= exported
