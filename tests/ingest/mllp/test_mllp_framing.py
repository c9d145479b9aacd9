"""MLLP framing: split and coalesced frames, garbage, missing start blocks, oversize, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huitong.ingest.mllp import FramingError, FramingErrorKind, MllpDecoder, frame

MSG = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||X\r"


def _kinds(events: list[bytes | FramingError]) -> list[object]:
    return [e if isinstance(e, bytes) else e.kind for e in events]


def test_frame_wraps_payload() -> None:
    assert frame(b"abc") == b"\x0babc\x1c\r"


def test_split_at_every_byte_position() -> None:
    stream = frame(MSG) + frame(b"second")
    for cut in range(len(stream) + 1):
        decoder = MllpDecoder()
        frames = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert frames == [MSG, b"second"], cut
        assert decoder.garbage_bytes == 0
        assert decoder.pending_bytes == 0


def test_split_into_single_bytes() -> None:
    decoder = MllpDecoder()
    frames: list[bytes] = []
    for byte in frame(MSG) * 3:
        frames += decoder.feed(bytes([byte]))
    assert frames == [MSG] * 3
    assert decoder.frames == 3


def test_coalesced_frames() -> None:
    decoder = MllpDecoder()
    payloads = [b"m%d" % i for i in range(50)]
    assert decoder.feed(b"".join(frame(p) for p in payloads)) == payloads


def test_garbage_between_frames_is_discarded_and_counted() -> None:
    decoder = MllpDecoder()
    events = decoder.feed_events(b"noise" + frame(b"one") + b"\n\n" + frame(b"two"))
    assert events == [FramingError(FramingErrorKind.GARBAGE, 5), b"one",
                      FramingError(FramingErrorKind.GARBAGE, 2), b"two"]
    assert decoder.garbage_bytes == 7
    assert decoder.errors[FramingErrorKind.GARBAGE] == 2


def test_missing_start_block_is_reported_and_the_next_frame_delivered() -> None:
    decoder = MllpDecoder()
    events = decoder.feed_events(MSG + b"\x1c\r" + frame(b"next"))
    assert events == [FramingError(FramingErrorKind.MISSING_START_BLOCK, len(MSG) + 1), b"next"]


def test_new_start_block_abandons_an_unfinished_frame() -> None:
    decoder = MllpDecoder()
    events = decoder.feed_events(b"\x0bhalf a mess" + frame(b"whole"))
    assert _kinds(events) == [FramingErrorKind.TRUNCATED, b"whole"]


def test_end_block_without_cr_still_ends_the_frame() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"\x0bone\x1c\x0btwo\x1c\r") == [b"one", b"two"]
    assert decoder.garbage_bytes == 0


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_oversized_frame_is_skipped_and_decoding_recovers(chunk: int) -> None:
    decoder = MllpDecoder(max_frame_bytes=10)
    stream = frame(b"x" * 10) + frame(b"y" * 11) + frame(b"z" * 500) + frame(b"ok")
    events: list[bytes | FramingError] = []
    for i in range(0, len(stream), chunk):
        events += decoder.feed_events(stream[i:i + chunk])
    assert _kinds(events) == [b"x" * 10, FramingErrorKind.OVERSIZED,
                              FramingErrorKind.OVERSIZED, b"ok"]
    assert decoder.errors[FramingErrorKind.OVERSIZED] == 2


def test_oversized_frame_without_end_recovers_at_next_start_block() -> None:
    decoder = MllpDecoder(max_frame_bytes=10)
    events = decoder.feed_events(b"\x0b" + b"q" * 100 + frame(b"ok"))
    assert _kinds(events) == [FramingErrorKind.OVERSIZED, b"ok"]


def test_close_reports_an_unfinished_frame() -> None:
    decoder = MllpDecoder()
    assert decoder.feed(b"\x0bMSH|partial") == []
    assert decoder.pending_bytes == len(b"MSH|partial")
    assert decoder.close() == [FramingError(FramingErrorKind.TRUNCATED, len(b"MSH|partial") + 1)]
    assert decoder.feed(frame(b"after")) == [b"after"]


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MllpDecoder(0)


payloads = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b"")),
    min_size=1, max_size=5,
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(st.tuples(st.binary(max_size=30), payloads), min_size=1, max_size=4),
    st.lists(st.integers(1, 17), min_size=1, max_size=10),
)
def test_fuzz_valid_frames_survive_any_garbage(
    parts: list[tuple[bytes, list[bytes]]], chunk_sizes: list[int]
) -> None:
    """Garbage of any kind (including stray VT/FS bytes) before a run of valid frames never
    hides those frames, whatever the read sizes."""
    decoder = MllpDecoder(max_frame_bytes=32)
    stream = b""
    expected: list[bytes] = []
    for garbage, frames in parts:
        stream += garbage
        for payload in frames:
            stream += frame(payload)
            if len(payload) <= 32:
                expected.append(payload)
    got: list[bytes] = []
    i = 0
    for n in range(len(stream)):
        size = chunk_sizes[n % len(chunk_sizes)]
        got += decoder.feed(stream[i:i + size])
        i += size
        if i >= len(stream):
            break
    # Garbage can itself form frames (a VT … FS inside it), so the valid frames are a
    # subsequence of what is delivered, in order, and all of them are there.
    it = iter(got)
    assert all(any(g == want for g in it) for want in expected)


def test_public_surface_is_explicit() -> None:
    import huitong.ingest.mllp as mllp_package

    exported = set(mllp_package.__all__)
    assert all(hasattr(mllp_package, name) for name in exported)
    assert {"MllpDecoder", "MllpClient", "start_mllp_server", "frame", "Peer"} <= exported
