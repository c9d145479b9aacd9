"""Shared steps of the loaders: reading operator files and assembling a CodeSystem.

Loaders are pure parse functions: file(s) in, one CodeSystem dict out
(https://hl7.org/fhir/R4/codesystem.html), with ``name``, ``version``, ``publisher`` and
``content = complete``. Concepts are emitted flat with ``parent`` properties rather than
nested, which keeps 100k-concept systems shallow to serialise and to index.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huitong.fhir.errors import Category
from huitong.terminology._messages import error

__all__ = [
    "HUITONG_CODE_SYSTEM_BASE", "SYNONYM", "ConceptRow", "assemble_code_system", "bad_file",
    "parents_by_prefix", "pick_column", "read_table", "require_column",
]

# Canonical base for code systems that have no HL7-registered URL (the national clinical
# editions, local lists). One constant so the deployment can change it.
HUITONG_CODE_SYSTEM_BASE = "http://huitong.example/fhir/CodeSystem/"

# Designation use "synonym" (SNOMED CT 900000000000013009), the usual FHIR marker.
SYNONYM = {"system": "http://snomed.info/sct", "code": "900000000000013009",
           "display": "Synonym"}

_ENCODINGS = ("utf-8-sig", "gb18030")  # Chinese spreadsheets saved as CSV are often GBK


@dataclass(slots=True)
class ConceptRow:
    code: str
    display: str
    parents: list[str] = field(default_factory=list)
    designations: list[dict[str, Any]] = field(default_factory=list)
    properties: list[dict[str, Any]] = field(default_factory=list)
    abstract: bool = False
    inactive: bool = False


def bad_file(path: Path | str, en: str, zh: str) -> Exception:
    return error(Category.INVALID, "bad-file", file=Path(path).name, problem=en, problem_zh=zh)


def _decode(raw: bytes, path: Path) -> str:
    for enc in _ENCODINGS:
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise bad_file(path, "not UTF-8 or GB18030 text", "不是 UTF-8 或 GB18030 编码的文本")


def read_table(path: Path | str, *, sheet: str | None = None) -> list[dict[str, str]]:
    """Rows of a CSV, TSV or XLSX file as ``{header: text}`` (headers and cells stripped).
    The first row whose cells are mostly non-empty is the header, so a title row above the
    table (as in many published spreadsheets) is skipped."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(path, sheet)
    else:
        text = _decode(path.read_bytes(), path)
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
        rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text), delimiter=delimiter)]
    rows = [r for r in rows if any(r)]
    if not rows:
        raise bad_file(path, "the file has no rows", "文件没有数据行")
    width = max(len(r) for r in rows[:20])
    start = next((i for i, r in enumerate(rows[:20]) if sum(1 for c in r if c) >= width * 0.6), 0)
    header = rows[start]
    return [
        {h: (r[i] if i < len(r) else "") for i, h in enumerate(header) if h}
        for r in rows[start + 1:]
    ]


def _xlsx_rows(path: Path, sheet: str | None) -> list[list[str]]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        ws = book[sheet] if sheet else book.worksheets[0]
        return [
            ["" if v is None else str(v).strip() for v in row]
            for row in ws.iter_rows(values_only=True)
        ]
    finally:
        book.close()


def pick_column(headers: Iterable[str], candidates: Sequence[str]) -> str | None:
    """The first of ``candidates`` present among ``headers`` (case- and space-insensitive)."""
    norm = {h.replace(" ", "").casefold(): h for h in headers}
    for c in candidates:
        found = norm.get(c.replace(" ", "").casefold())
        if found is not None:
            return found
    return None


def require_column(path: Path | str, headers: Iterable[str], candidates: Sequence[str]) -> str:
    found = pick_column(headers, candidates)
    if found is None:
        names = " / ".join(candidates)
        raise bad_file(path, f"no column named {names}", f"缺少列：{names}")
    return found


def parents_by_prefix(codes: Iterable[str]) -> dict[str, str]:
    """For codes with no published hierarchy, the parent of each is the longest other code
    that is a prefix of it (ignoring a trailing '.'): E11.900 → E11.9 → E11."""
    present = set(codes)
    out: dict[str, str] = {}
    for code in present:
        for n in range(len(code) - 1, 0, -1):
            prefix = code[:n]
            if prefix in present:
                out[code] = prefix
                break
            if prefix.endswith(".") and prefix[:-1] in present:
                out[code] = prefix[:-1]
                break
    return out


def assemble_code_system(
    *, url: str, name: str, title: str, version: str, publisher: str,
    concepts: Iterable[ConceptRow], language: str = "en",
    properties: Sequence[tuple[str, str, str]] = (), description: str | None = None,
    copyright: str | None = None, hierarchy_meaning: str = "is-a",
    case_sensitive: bool = True,
) -> dict[str, Any]:
    """A complete CodeSystem. ``properties`` are ``(code, type, description)``; ``parent``,
    ``inactive`` and ``notSelectable`` are declared whenever concepts use them."""
    rows = list(concepts)
    declared = list(properties)
    used = {p["code"] for r in rows for p in r.properties}
    if any(r.parents for r in rows):
        declared.append(("parent", "code", "Parent concept / 上级概念"))
    if any(r.inactive for r in rows):
        declared.append(("inactive", "boolean", "Inactive / 已停用"))
    if any(r.abstract for r in rows):
        declared.append(("notSelectable", "boolean", "Grouping only, not for use / 仅用于分组"))
    declared += [(u, "string", u) for u in sorted(used - {d[0] for d in declared})]
    concept_list: list[dict[str, Any]] = []
    for r in rows:
        c: dict[str, Any] = {"code": r.code}
        if r.display:
            c["display"] = r.display
        if r.designations:
            c["designation"] = r.designations
        props = list(r.properties)
        props += [{"code": "parent", "valueCode": p} for p in r.parents]
        if r.inactive:
            props.append({"code": "inactive", "valueBoolean": True})
        if r.abstract:
            props.append({"code": "notSelectable", "valueBoolean": True})
        if props:
            c["property"] = props
        concept_list.append(c)
    cs: dict[str, Any] = {
        "resourceType": "CodeSystem", "url": url, "version": version, "name": name,
        "title": title, "status": "active", "publisher": publisher, "language": language,
    }
    if description:
        cs["description"] = description
    if copyright:
        cs["copyright"] = copyright
    cs.update({
        "caseSensitive": case_sensitive, "hierarchyMeaning": hierarchy_meaning,
        "content": "complete", "count": len(concept_list),
        "property": [{"code": c, "type": t, "description": d} for c, t, d in declared],
        "concept": concept_list,
    })
    return cs
