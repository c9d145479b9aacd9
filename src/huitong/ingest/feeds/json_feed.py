"""JSON feeds: a JSON array of record objects, NDJSON (one object per line —
https://github.com/ndjson/ndjson-spec) or a single object, read incrementally so a large
array is never held in memory whole.

A record's ``source`` names are dotted paths with optional indexes (``patient.mrn``,
``results[0].value``). Problems carry a JSON Pointer (RFC 6901) to the record's field, e.g.
``/17/patient/mrn`` for the 18th array element, and the line where the record starts.
A syntax error inside an array ends the file (nothing after it can be trusted to be a
record boundary) and is reported; in NDJSON only the bad line is skipped.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import IO, Any

from huitong.ingest.feeds.batches import Record, batch_records
from huitong.ingest.feeds.mapping import FeedMapping
from huitong.ingest.feeds.problems import Problem, Reason
from huitong.ingest.feeds.transaction import Conversion

__all__ = ["convert_json", "json_path_getter"]

_CHUNK = 1 << 20
_MAX_RECORD = 64 << 20  # one record larger than this is not a feed record
_WS = re.compile(r"[ \t\r\n]*")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_decoder = json.JSONDecoder()


def _steps(path: str) -> tuple[str | int, ...]:
    out: list[str | int] = []
    for m in _STEP.finditer(path):
        out.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    return tuple(out)


def json_path_getter(record: Any) -> Any:
    """``get(source)`` over one JSON object: the value at the dotted path, or ``None`` when
    absent, ``null`` or a blank string."""
    cache: dict[str, tuple[str | int, ...]] = {}

    def get(source: str) -> Any:
        steps = cache.get(source)
        if steps is None:
            steps = cache[source] = _steps(source)
        node = record
        for s in steps:
            if isinstance(s, int):
                if not isinstance(node, list) or s >= len(node):
                    return None
            elif not isinstance(node, dict) or s not in node:
                return None
            node = node[s]
        if node is None or (isinstance(node, str) and not node.strip()):
            return None
        return node

    return get


def _pointer(head: str) -> Any:
    def pointer(source: str) -> str:
        parts = [str(s).replace("~", "~0").replace("/", "~1") for s in _steps(source)]
        return head + "".join(f"/{p}" for p in parts)

    return pointer


class _Text:
    """Decoded text read in chunks, with the line number of any position."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
        self.buf, self.pos, self.eof, self._lines_before, self._counted = "", 0, False, 1, 0

    def more(self) -> bool:
        if self.eof:
            return False
        data = self._stream.read(_CHUNK)
        if isinstance(data, str):
            raise TypeError("convert_json reads bytes: open the file in binary mode ('rb')")
        self.eof = not data
        # drop what has been consumed, keeping the line count
        self.line_at(self.pos)
        self.buf, self._counted = self.buf[self.pos:], self._counted - self.pos
        self.pos = 0
        self.buf += self._decoder.decode(data, final=self.eof)
        return True

    def skip_ws(self) -> None:
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or not self.more():
                return

    def peek(self) -> str:
        self.skip_ws()
        return self.buf[self.pos:self.pos + 1]

    def line_at(self, pos: int) -> int:
        if pos > self._counted:
            self._lines_before += self.buf.count("\n", self._counted, pos)
            self._counted = pos
        return self._lines_before

    def value(self) -> Any:
        """Decode the value at ``pos`` (reading more while it may be incomplete)."""
        while True:
            try:
                value, end = _decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if len(self.buf) - self.pos > _MAX_RECORD or not self.more():
                    raise
                continue
            if end == len(self.buf) and not self.eof and self.more():
                continue  # a number or literal may go on in the next chunk
            self.pos = end
            return value


def _record(value: Any, row: int, line: int | None, head: str) -> Record:
    """``head`` is the JSON Pointer of the record itself (``/17``; empty for NDJSON)."""
    if not isinstance(value, dict):
        return Record(json_path_getter({}), row, line, problems=[Problem(
            Reason.NOT_AN_OBJECT, "a record must be a JSON object", "记录必须是 JSON 对象",
            pointer=head)])
    return Record(json_path_getter(value), row, line, _pointer(head))


def _array(t: _Text) -> Iterator[Record | Problem]:
    t.pos += 1
    row = 0
    if t.peek() == "]":
        return
    while True:
        t.skip_ws()
        line = t.line_at(t.pos)
        try:
            value = t.value()
        except (json.JSONDecodeError, UnicodeDecodeError):
            yield Problem(Reason.BAD_RECORD, f"JSON syntax error in array element {row + 1}; "
                          "the rest of the file was not read",
                          f"数组第 {row + 1} 个元素存在 JSON 语法错误，其后内容未读取",
                          row=row + 1, line=line, pointer=f"/{row}")
            return
        row += 1
        yield _record(value, row, line, f"/{row - 1}")
        sep = t.peek()
        if sep == ",":
            t.pos += 1
            continue
        if sep != "]":
            yield Problem(Reason.BAD_RECORD, "expected ',' or ']' after an array element",
                          "数组元素后应为 ',' 或 ']'", line=t.line_at(t.pos))
        return


def _lines(t: _Text) -> Iterator[Record | Problem]:
    row = 0
    while t.peek():
        line = t.line_at(t.pos)
        row += 1
        try:
            value = t.value()
        except json.JSONDecodeError:
            yield Record(json_path_getter({}), row, line, problems=[Problem(
                Reason.BAD_RECORD, "not valid JSON", "不是有效的 JSON")])
            end = t.buf.find("\n", t.pos)
            while end < 0 and t.more():
                end = t.buf.find("\n", t.pos)
            t.pos = len(t.buf) if end < 0 else end + 1
            continue
        yield _record(value, row, line, "")


def _enveloped(t: _Text, path: str) -> Iterator[Record | Problem]:
    """Records in an array inside one object (``{"code": 0, "data": {"items": [...]}}``):
    the document is read whole, as such API exports are."""
    try:
        document = t.value()
    except json.JSONDecodeError:
        yield Problem(Reason.BAD_RECORD, "the file is not valid JSON", "文件不是有效的 JSON",
                      line=t.line_at(t.pos))
        return
    items = json_path_getter(document)(path)
    prefix = "".join(f"/{s}" for s in _steps(path))
    if not isinstance(items, list):
        yield Problem(Reason.MISSING_VALUE, f"no record array at {path!r}",
                      f"在 {path!r} 处没有记录数组", pointer=prefix)
        return
    for i, value in enumerate(items):
        yield _record(value, i + 1, None, f"{prefix}/{i}")


def _records(stream: IO[bytes], envelope: str | None) -> Iterator[Record | Problem]:
    t = _Text(stream)
    try:
        first = t.peek()
        if first == "{" and envelope:
            yield from _enveloped(t, envelope)
        elif first == "[":
            yield from _array(t)
        elif first:
            yield from _lines(t)
    except UnicodeDecodeError:
        yield Problem(Reason.BAD_ENCODING, "the file is not UTF-8; the rest was not read",
                      "文件不是 UTF-8 编码，其余内容未读取", line=t.line_at(t.pos))


def convert_json(stream: IO[bytes], mapping: FeedMapping, *, validate: bool = True
                 ) -> Iterator[Conversion]:
    """Convert a JSON array, NDJSON or single-object file (binary, UTF-8 — JSON's encoding,
    RFC 8259 §8.1) into transaction Bundles of ``mapping.batch_size`` records each.

    ``row`` in a problem is the record's 1-based position; ``pointer`` the JSON Pointer of the
    field within the file (array input) or within the line's object (NDJSON). When the mapping
    names ``records`` (``data.items``) and the file is one object, the records are the array
    at that path (the document is then read whole). ``validate`` as for
    :func:`~huitong.ingest.feeds.csv_feed.convert_csv`."""
    return batch_records(_records(stream, mapping.records), mapping, validate=validate)
