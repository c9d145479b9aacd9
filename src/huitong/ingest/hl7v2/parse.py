"""One inbound HL7 v2 message → an ``hl7.Message`` tree plus its header, or an error.

``parse`` = :func:`~huitong.ingest.hl7v2.decode.decode_message`, then
:func:`~huitong.ingest.hl7v2.header.check_header` and the structural checks (HL7 v2.8
chapter 2, section 2.5: MSH first and only once, segment ids of three upper-case letters or
digits), then the python-hl7 tree (built by :func:`~huitong.ingest.hl7v2.tree.build_tree`,
identical to ``hl7.parse``'s). Z-segments are ordinary segments here: they stay in the tree
and in the raw text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import hl7

from huitong.ingest.hl7v2.decode import DecodedMessage, decode_message
from huitong.ingest.hl7v2.errors import Condition, ErrorLocation, Hl7v2Error, Hl7v2Issue
from huitong.ingest.hl7v2.header import MessageHeader, check_header
from huitong.ingest.hl7v2.tree import build_tree

__all__ = ["ParsedMessage", "parse", "parse_decoded"]

_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")


@dataclass(frozen=True)
class ParsedMessage:
    """A message that passed decoding and the header and structure checks.

    ``message`` is a plain ``hl7.Message`` (segments indexed from 0, fields from 1, as
    python-hl7 does), built on first use: the tree costs more than mapping the text, and
    the intake maps ``decoded.text`` directly. ``decoded`` keeps the normalised text and the
    codec, which the ACK is encoded with; ``warnings`` are severity-W issues (e.g. a
    character-set fallback).
    """

    header: MessageHeader
    decoded: DecodedMessage

    @cached_property
    def message(self) -> hl7.Message:
        header = self.header
        return build_tree(self.decoded.text, header.field_separator,
                          header.encoding_characters)

    @property
    def codec(self) -> str:
        return self.decoded.codec

    @property
    def warnings(self) -> tuple[Hl7v2Issue, ...]:
        return self.decoded.warnings

    @property
    def segment_ids(self) -> list[str]:
        return [str(segment[0]) for segment in self.message]

    @property
    def z_segments(self) -> list[hl7.Segment]:
        """Site-defined segments (ids starting with Z), in message order."""
        return [segment for segment in self.message if str(segment[0]).startswith("Z")]


def _structure_issues(decoded: DecodedMessage) -> list[Hl7v2Issue]:
    sep = decoded.header.field_separator
    issues: list[Hl7v2Issue] = []
    counts: dict[str, int] = {}
    for index, segment in enumerate(decoded.segments, start=1):
        segment_id = segment[:3]
        well_formed = _SEGMENT_ID.fullmatch(segment_id) is not None and (
            len(segment) == 3 or segment[3] == sep
        )
        if not well_formed:
            # The text is not echoed: a broken line is often a wrapped clinical note.
            issues.append(Hl7v2Issue(
                Condition.SEGMENT_SEQUENCE,
                f"segment {index} does not start with a valid segment id",
                f"第 {index} 段的段标识无效",
                ErrorLocation("", index)))
            continue
        counts[segment_id] = counts.get(segment_id, 0) + 1
        if segment_id == "MSH" and index > 1:
            issues.append(Hl7v2Issue(
                Condition.SEGMENT_SEQUENCE,
                "MSH appears more than once; send one message per frame",
                "MSH 段出现多次，请每帧发送一条消息",
                ErrorLocation("MSH", counts[segment_id])))
    return issues


def parse_decoded(decoded: DecodedMessage) -> ParsedMessage:
    """Check and parse an already decoded message; raises :class:`Hl7v2Error`."""
    issues = [*check_header(decoded.header), *_structure_issues(decoded)]
    if issues:
        raise Hl7v2Error(tuple(issues), decoded.header, decoded.codec)
    return ParsedMessage(decoded.header, decoded)


def parse(raw: bytes) -> ParsedMessage:
    """Decode, check and parse one message.

    Raises :class:`Hl7v2Error` (and nothing else) with every problem found and the best
    header that could be read, so the caller can always build an ACK from
    ``error.header`` and ``error.codec``.
    """
    return parse_decoded(decode_message(raw))
