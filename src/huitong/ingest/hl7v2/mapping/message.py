"""A read-only view of a parsed HL7 v2 message, normalised for mapping.

python-hl7 nests fields, repetitions, components and sub-components differently depending on
which separators a value happens to contain. The mappers need one shape, so each segment's
text is re-split here with the message's own separators (MSH-1/MSH-2) and every leaf is
unescaped once (``\\F\\``, ``\\S\\``, ``\\T\\``, ``\\R\\``, ``\\E\\``, ``\\.br\\``).

Numbering follows the standard: fields, components and sub-components are 1-based, and
``MSH-1`` is the field separator itself, so ``MSH-9`` is the message type as everywhere else.
HL7's explicit null ``""`` reads as empty: the mapping never deletes on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import hl7

__all__ = ["Segment", "V2Message", "Value"]


def _unescaper(field_sep: str, encoding: str) -> Callable[[str], str]:
    """python-hl7's unescaping (``\\F\\``, ``\\S\\``, ``\\.br\\``, ``\\Xhh\\``…) for
    this message's delimiters."""
    chars = encoding + "^~\\&"  # missing delimiters fall back to the defaults
    separators = "\r" + field_sep + chars[1] + chars[0] + chars[3]  # python-hl7's order
    unescape: Callable[[str], str] = hl7.Message(
        separator="\r", sequence=[], esc=chars[2], separators=separators).unescape
    return unescape


@dataclass(frozen=True, slots=True)
class Value:
    """One repetition of a field: components, each a tuple of sub-components."""

    parts: tuple[tuple[str, ...], ...]

    def __getitem__(self, i: int) -> str:
        """Component ``i`` (1-based; its first sub-component), ``''`` when absent."""
        if 0 < i <= len(self.parts):
            return self.parts[i - 1][0] if self.parts[i - 1] else ""
        return ""

    def part(self, i: int) -> Value:
        """Component ``i`` as a value of its own (its sub-components become components), for
        composite components such as CX.4 (an HD) or XCN.9."""
        if 0 < i <= len(self.parts):
            return Value(tuple((s,) for s in self.parts[i - 1]))
        return Value(())

    @property
    def empty(self) -> bool:
        return not any(s for comp in self.parts for s in comp)

    @property
    def text(self) -> str:
        """Every non-empty leaf, joined with spaces (for free-text fallbacks)."""
        return " ".join(s for comp in self.parts for s in comp if s)


_EMPTY = Value(())


class Segment:
    """One segment: ``id`` (``PID``), ``index`` (1-based count among segments with that id).
    Fields are split from the text on first access, since most fields are never read."""

    __slots__ = ("_cache", "_raw", "_seps", "id", "index")

    def __init__(self, sid: str, index: int, raw: list[str], seps: _Separators) -> None:
        self.id = sid
        self.index = index
        self._raw = raw  # raw[n] is field n; raw[0] is the segment id
        self._seps = seps
        self._cache: dict[int, list[Value]] = {}

    @property
    def field_count(self) -> int:
        """The number of fields present (trailing empty fields are not sent)."""
        return len(self._raw) - 1

    def loc(self, field: int | None = None, component: int | None = None) -> str:
        """HL7-style location: ``OBX[3]``, ``OBX[3].6``, ``OBX[3].6.1``."""
        where = f"{self.id}[{self.index}]"
        if field is not None:
            where += f".{field}"
            if component is not None:
                where += f".{component}"
        return where

    def reps(self, n: int) -> list[Value]:
        """The non-empty repetitions of field ``n``."""
        cached = self._cache.get(n)
        if cached is None:
            text = self._raw[n] if 0 < n < len(self._raw) else ""
            cached = self._seps.field(text, literal=self.id == "MSH" and n <= 2)
            self._cache[n] = cached
        return cached

    def value(self, n: int) -> Value:
        """The first repetition of field ``n`` (an empty value when absent)."""
        reps = self.reps(n)
        return reps[0] if reps else _EMPTY

    def get(self, n: int, component: int = 1) -> str:
        """Component ``component`` of the first repetition of field ``n``, stripped."""
        return self.value(n)[component]


class _Separators:
    """The message's delimiters (MSH-1, MSH-2) and how a field's text splits by them."""

    def __init__(self, encoding: str, unescape: Callable[[str], str]) -> None:
        chars = encoding + "^~\\&"  # missing delimiters fall back to the defaults
        self.component, self.repetition = chars[0], chars[1]
        self.escape, self.sub = chars[2], chars[3]
        self._unescape = unescape
        self._plain = frozenset((self.component, self.repetition, self.escape, self.sub))

    def _leaf(self, text: str) -> str:
        if self.escape in text:
            text = self._unescape(text)
        text = text.strip()
        return "" if text == '""' else text

    def field(self, text: str, *, literal: bool = False) -> list[Value]:
        if not text or text == '""':
            return []
        if literal:
            return [Value(((text,),))]
        if self._plain.isdisjoint(text):  # most fields are one plain value
            text = text.strip()
            return [Value(((text,),))] if text else []
        out = []
        leaf, sub = self._leaf, self.sub
        for rep in text.split(self.repetition):
            if not rep:
                continue
            # List comprehensions, not generator expressions: every field a mapper reads
            # comes through here, and tuple(<list>) costs about half of tuple(<generator>).
            value = Value(tuple([
                tuple([leaf(s) for s in comp.split(sub)]) if comp else ("",)
                for comp in rep.split(self.component)
            ]))
            if not value.empty:
                out.append(value)
        return out


class V2Message:
    """The segments of one message, in order, with MSH accessors.

    Built from a python-hl7 :class:`hl7.Message`, or (faster: no round trip through
    python-hl7's containers) from the message text with segments already separated by CR.
    """

    def __init__(self, message: hl7.Message | str) -> None:
        if isinstance(message, str):
            lines = [s for s in message.split("\r") if s.strip()]
        else:
            lines = [str(s) for s in message]
        if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
            from huitong.ingest.hl7v2.mapping.errors import MappingError

            raise MappingError(100, "MSH", "The message does not start with MSH",
                               "消息未以 MSH 段开头")
        field_sep = lines[0][3]
        encoding = lines[0][4:].split(field_sep, 1)[0]
        seps = _Separators(encoding, _unescaper(field_sep, encoding))
        counts: dict[str, int] = {}
        self.segments: list[Segment] = []
        for line in lines:
            texts = line.split(field_sep)
            sid = texts[0][:3]
            if sid == "MSH":  # MSH-1 is the separator itself, MSH-2 the encoding characters
                texts = [sid, field_sep, *texts[1:]]
            counts[sid] = counts.get(sid, 0) + 1
            self.segments.append(Segment(sid, counts[sid], texts, seps))
        self.msh = self.segments[0]

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def all(self, sid: str) -> list[Segment]:
        return [s for s in self.segments if s.id == sid]

    def first(self, sid: str) -> Segment | None:
        return next((s for s in self.segments if s.id == sid), None)

    @property
    def message_code(self) -> str:
        return self.msh.get(9, 1).upper()

    @property
    def trigger_event(self) -> str:
        return self.msh.get(9, 2).upper()

    @property
    def structure(self) -> str:
        return self.msh.get(9, 3).upper()

    @property
    def control_id(self) -> str:
        return self.msh.get(10)

    @property
    def version(self) -> str:
        return self.msh.get(12)
