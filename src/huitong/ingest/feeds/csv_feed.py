"""CSV feeds: a delimited text file with a header row, converted record by record through a
:class:`~huitong.ingest.feeds.mapping.FeedMapping` (RFC 4180 quoting —
https://www.rfc-editor.org/rfc/rfc4180 — fields may hold the delimiter, quotes and newlines).

Encodings: UTF-8 with or without a BOM, and GB18030 (a superset of GBK and GB2312, what
Chinese hospital systems export). ``encoding = "auto"`` takes UTF-8 when the file starts with
a BOM or its first 64 KiB decode as UTF-8, otherwise GB18030; a guessed-UTF-8 file whose later
records are GB18030 has those records read as GB18030 (with one warning). Bytes that do not
decode make only their record bad (:attr:`Reason.BAD_ENCODING`), not the file.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from typing import IO, Any

from huitong.ingest.feeds.batches import Record, batch_records
from huitong.ingest.feeds.mapping import FeedMapping
from huitong.ingest.feeds.problems import Problem, Reason
from huitong.ingest.feeds.transaction import Conversion

__all__ = ["convert_csv", "detect_encoding"]

_HEAD = 64 * 1024
_DELIMITERS = (",", "\t", ";", "|")
csv.field_size_limit(16 * 1024 * 1024)  # one cell of a clinical note can exceed the 128 KiB default


class _Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``stream``: lets us look at the start of a stream
    that cannot seek without reading it twice."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head, self._stream = memoryview(head), stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def detect_encoding(head: bytes) -> str:
    """``utf-8-sig`` for a BOM, ``utf-8`` when ``head`` decodes as UTF-8 (a multi-byte
    sequence cut at the end is allowed), otherwise ``gb18030``."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "gb18030"


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _clean(name: str) -> str:
    return name.strip().lstrip("\ufeff")


def _records(stream: IO[bytes], mapping: FeedMapping) -> Iterator[Record | Problem]:
    head = stream.read(_HEAD)
    if isinstance(head, str):
        raise TypeError("convert_csv reads bytes: open the file in binary mode ('rb')")
    encoding = detect_encoding(head) if mapping.encoding == "auto" else mapping.encoding
    if encoding == "utf-8" and head.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    text = io.TextIOWrapper(io.BufferedReader(_Prefixed(head, stream)), encoding=encoding,
                            errors="surrogateescape", newline="")
    delimiter = mapping.delimiter
    if delimiter == "auto":
        sample = head.decode(encoding, errors="replace")
        delimiter = _delimiter(sample.splitlines()[0] if sample else "")
    reader = csv.reader(text, delimiter=delimiter, quotechar='"', strict=True)
    try:
        header = [_clean(h) for h in next(reader)]
    except StopIteration:
        yield Problem(Reason.BAD_RECORD, "the file is empty: no header row",
                      "文件为空：缺少表头行", line=1)
        return
    except csv.Error as exc:
        yield Problem(Reason.BAD_RECORD, f"unreadable header row: {exc}", "表头行无法解析", line=1)
        return
    index = {name: i for i, name in reversed(list(enumerate(header)))}
    for name in sorted({h for h in header if header.count(h) > 1}):
        yield Problem(Reason.BAD_RECORD, f"column {name!r} appears more than once in the header; "
                      "the first is used", f"表头中列 {name!r} 出现多次，使用第一列", line=1,
                      field=name, severity="warning")
    wanted = _sources(mapping)
    for name in sorted(wanted - index.keys()):
        yield Problem(Reason.MISSING_VALUE, f"column {name!r} named by the mapping is not in the "
                      "header", f"映射中的列 {name!r} 不在表头中", line=1, field=name)
    width, row, previous_line = len(header), 0, reader.line_num
    guessed_utf8, warned = mapping.encoding == "auto" and encoding == "utf-8", False
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row += 1
            yield Record(_none, row, previous_line + 1, problems=[Problem(
                Reason.BAD_RECORD, f"unreadable CSV record: {exc}", "CSV 记录无法解析")])
            previous_line = reader.line_num
            continue
        line, previous_line = previous_line + 1, reader.line_num
        if not cells:  # a blank line is no record
            continue
        row += 1
        problems = None
        if len(cells) != width:
            problems = [Problem(Reason.BAD_RECORD, f"{len(cells)} fields where the header has "
                                f"{width}", f"该行有 {len(cells)} 个字段，表头有 {width} 个")]
        else:
            try:
                "".join(cells).encode("utf-8")
            except UnicodeEncodeError:
                recovered = _as_gb18030(cells) if guessed_utf8 else None
                if recovered is None:
                    problems = [Problem(Reason.BAD_ENCODING,
                                        f"bytes that are not valid {encoding}",
                                        f"含有不符合 {encoding} 编码的字节")]
                else:
                    cells = recovered
                    if not warned:
                        warned = True
                        yield Problem(
                            Reason.BAD_ENCODING, "the start of the file looked like UTF-8 but "
                            f"record {row} onwards has GB18030 text; such records were read as "
                            "GB18030 — declare the encoding in the mapping to be sure",
                            f"文件开头像 UTF-8，但第 {row} 条记录起含有 GB18030 文本，已按 GB18030 "
                            "读取；请在映射中声明编码", row=row, line=line, severity="warning")
        yield Record(_getter(cells, index), row, line, problems=problems)


def _as_gb18030(cells: list[str]) -> list[str] | None:
    """The cells' original bytes read as GB18030, when a file guessed to be UTF-8 (its first
    64 KiB were ASCII or UTF-8) turns out not to be. Safe to split first: a comma, tab,
    semicolon or quote byte never occurs inside a GB18030 character."""
    try:
        return [c.encode("utf-8", "surrogateescape").decode("gb18030") for c in cells]
    except UnicodeError:
        return None


def _none(_source: str) -> None:
    return None


def _getter(cells: list[str], index: dict[str, int]) -> Any:
    def get(source: str) -> str | None:
        i = index.get(source)
        if i is None:
            return None
        value = cells[i]
        return value if value and not value.isspace() else None

    return get


def _sources(mapping: FeedMapping) -> set[str]:
    names: set[str] = set()
    for r in mapping.resources:
        if r.for_each is not None:  # item sources read a JSON array; CSV has none
            continue
        names.update(r.value.sources)
        if r.only_if:
            names.add(r.only_if)
        for f in r.fields:
            for s in (f.source, f.unit_source):
                if s:
                    names.add(s)
            for t in (f.template, f.target_value):
                if t is not None:
                    names.update(t.sources)
    return names


def convert_csv(stream: IO[bytes], mapping: FeedMapping, *, validate: bool = True
                ) -> Iterator[Conversion]:
    """Convert a CSV file (opened in binary mode) into transaction Bundles of
    ``mapping.batch_size`` records each, streaming: one batch is in memory at a time.

    Bad records are reported in the batch's ``problems`` (row = data-row number, line = the
    physical line where the record starts, field = column) and left out; good ones are kept.
    File-level problems (no header, a mapped column missing from the header) come in the first
    batch with no row.

    ``validate=False`` skips the per-resource FHIR validation (about 40 % of the conversion
    time): every resource is validated again when the Bundle is written, so a caller may
    convert optimistically and, only when a batch's transaction is refused, check the
    records listed in ``Conversion.unchecked`` (:meth:`Unchecked.remap
    <huitong.ingest.feeds.batches.Unchecked.remap>`) to find, report and drop its bad
    records (the feed intake does).
    """
    return batch_records(_records(stream, mapping), mapping, validate=validate)
