"""The fast tree builder must produce exactly what ``hl7.parse`` produces."""

from __future__ import annotations

from typing import Any

import hl7
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huitong.ingest.hl7v2 import Hl7v2Error, decode_message
from huitong.ingest.hl7v2.tree import build_tree
from huitong_testdata import HL7V2_SAMPLES


def assert_same_tree(ours: Any, theirs: Any, path: str = "message") -> None:
    assert type(ours) is type(theirs), path
    if isinstance(ours, str):
        assert ours == theirs, path
        return
    assert ours.__dict__ == theirs.__dict__, path
    assert len(ours) == len(theirs), path
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert_same_tree(a, b, f"{path}[{i}]")


def test_every_sample_builds_the_same_tree() -> None:
    files = sorted(HL7V2_SAMPLES.glob("*.hl7"))
    if not files:
        pytest.skip(f"shared HL7 v2 samples not found at {HL7V2_SAMPLES}")
    for path in files:
        decoded = decode_message(path.read_bytes())
        h = decoded.header
        ours = build_tree(decoded.text, h.field_separator, h.encoding_characters)
        assert_same_tree(ours, hl7.parse(decoded.text), path.name)
        assert str(ours) == str(hl7.parse(decoded.text))


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from("|^~\\&#$*!\r AZ19张"), max_size=80),
       st.sampled_from(["|^~\\&", "#$*!@", "|^~\\&#"]))
def test_fuzzed_messages_build_the_same_tree(body: str, delimiters: str) -> None:
    text = "MSH" + delimiters[0] + delimiters[1:] + delimiters[0] + body
    try:
        decoded = decode_message(text.encode())
    except Hl7v2Error:
        return
    h = decoded.header
    assert_same_tree(build_tree(decoded.text, h.field_separator, h.encoding_characters),
                     hl7.parse(decoded.text))
