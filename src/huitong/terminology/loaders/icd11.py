"""ICD-11 MMS from WHO's linearization tabular export (``LinearizationMiniOutput-MMS-*.txt``).

The export is tab-separated with the columns ``Foundation URI``, ``Linearization (release)
URI``, ``Code``, ``BlockId``, ``Title``, ``ClassKind``, ``DepthInKind``, ``IsResidual``,
``ChapterNo``, ``BrowserLink``, ``isLeaf`` … and a last header cell ``Version:…``. Titles
carry one ``- `` per level of depth; the hierarchy is read from that indentation and the row
order. Chapters are coded by ``ChapterNo`` and blocks by ``BlockId``; both are
``notSelectable``. The same export in another language (for example the Chinese release)
adds designations, joined on the linearization URI. Canonical URL per
https://terminology.hl7.org/CodeSystem-icd11-mms.html.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huitong.terminology.loaders._common import (
    ConceptRow,
    assemble_code_system,
    pick_column,
    read_table,
    require_column,
)

__all__ = ["ICD11_MMS_URL", "load_icd11_mms"]

ICD11_MMS_URL = "http://id.who.int/icd/release/11/mms"
_URI = ("Linearization (release) URI", "Linearization URI")


def _depth_and_title(raw: str) -> tuple[int, str]:
    depth = 0
    text = raw.strip()
    while text.startswith("-"):
        depth += 1
        text = text[1:].lstrip()
    return depth, text


def _key(row: dict[str, str], cols: dict[str, str | None]) -> str | None:
    for col in (cols["code"], cols["block"]):
        if col and row.get(col):
            return row[col]
    kind = (row.get(cols["kind"] or "", "") or "").lower()
    if kind == "chapter" and cols["chapter"] and row.get(cols["chapter"]):
        return row[cols["chapter"]]
    return None


def _columns(path: Path | str, headers: list[str]) -> dict[str, str | None]:
    return {
        "uri": pick_column(headers, _URI),
        "code": require_column(path, headers, ("Code",)),
        "block": pick_column(headers, ("BlockId",)),
        "title": require_column(path, headers, ("Title",)),
        "kind": pick_column(headers, ("ClassKind",)),
        "chapter": pick_column(headers, ("ChapterNo",)),
        "residual": pick_column(headers, ("IsResidual",)),
        "leaf": pick_column(headers, ("isLeaf",)),
    }


def _header_version(headers: list[str]) -> str | None:
    for h in headers:
        m = re.match(r"Version:\s*(\d{4})\s+([A-Za-z]{3})", h)
        if m:
            return f"{m.group(1)}-{m.group(2)}"
    return None


def load_icd11_mms(
    path: Path | str, *, version: str | None = None, language: str = "en",
    translations: Sequence[tuple[Path | str, str]] = (),
) -> dict[str, Any]:
    """ICD-11 MMS as a CodeSystem; ``translations`` are ``(export file, language)`` pairs."""
    rows = read_table(path)
    headers = list(rows[0]) if rows else []
    cols = _columns(path, headers)
    stack: list[str] = []
    concepts: dict[str, ConceptRow] = {}
    by_uri: dict[str, str] = {}
    for r in rows:
        key = _key(r, cols)
        if not key:
            continue
        depth, title = _depth_and_title(r.get(cols["title"] or "", ""))
        del stack[depth:]
        kind = (r.get(cols["kind"] or "", "") or "").lower()
        row = ConceptRow(key, title, [stack[-1]] if stack else [])
        row.abstract = kind in ("chapter", "block")
        row.properties.append({"code": "kind", "valueCode": kind or "category"})
        if cols["residual"] and r.get(cols["residual"], "").lower() == "true":
            row.properties.append({"code": "residual", "valueBoolean": True})
        concepts.setdefault(key, row)
        if cols["uri"] and r.get(cols["uri"]):
            by_uri[r[cols["uri"]]] = key
        stack.append(key)
    for tpath, lang in translations:
        trows = read_table(tpath)
        theaders = list(trows[0]) if trows else []
        tcols = _columns(tpath, theaders)
        for r in trows:
            uri_key = by_uri.get(r.get(tcols["uri"] or "", ""))
            key = uri_key or _key(r, tcols)
            if key in concepts:
                _, title = _depth_and_title(r.get(tcols["title"] or "", ""))
                if title:
                    concepts[key].designations.append({"language": lang, "value": title})
    version = version or _header_version(headers) or "unknown"
    return assemble_code_system(
        url=ICD11_MMS_URL, name="ICD11MMS", title=f"ICD-11 MMS ({version})", version=version,
        publisher="World Health Organization", concepts=concepts.values(), language=language,
        properties=[("kind", "code", "chapter, block or category"),
                    ("residual", "boolean", "Residual category (other / unspecified)")],
        description="ICD-11 for Mortality and Morbidity Statistics, from the WHO "
        "linearization tabular export.",
    )
