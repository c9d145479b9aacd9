"""WHO ATC/DDD index, from the operator's licensed copy (CSV or XLSX).

Columns as the WHO Collaborating Centre publishes them: ``ATC code``, ``ATC level name``,
``DDD``, ``U`` (unit), ``Adm.R`` (route), ``Note`` (snake_case variants such as ``atc_code``
and ``uom`` are accepted), plus an optional Chinese name column (``中文名称``) the region adds.
A code with several DDDs (one per route) appears on several rows. The hierarchy comes from
the code itself: levels are 1, 3, 4, 5 and 7 characters (N → N02 → N02B → N02BA → N02BA01).
Each DDD becomes a ``ddd`` property as published (``"3 g O"``) and an ``adm-route`` code.
https://atcddd.fhi.no/atc_ddd_index_and_guidelines/
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huitong.terminology.loaders._common import (
    ConceptRow,
    assemble_code_system,
    pick_column,
    read_table,
    require_column,
)

__all__ = ["ATC_URL", "load_atc"]

ATC_URL = "http://www.whocc.no/atc"
_LEVELS = (1, 3, 4, 5, 7)


def _parent(code: str) -> str | None:
    shorter = [n for n in _LEVELS if n < len(code)]
    return code[: shorter[-1]] if shorter else None


def load_atc(path: Path | str, *, version: str) -> dict[str, Any]:
    """The ATC classification with DDDs as a CodeSystem (``version`` e.g. ``"2025"``)."""
    rows = read_table(path)
    headers = list(rows[0]) if rows else []
    code_col = require_column(path, headers, ("ATC code", "atc_code", "ATC"))
    name_col = require_column(path, headers, ("ATC level name", "atc_name", "Name"))
    ddd_col = pick_column(headers, ("DDD", "ddd"))
    unit_col = pick_column(headers, ("U", "uom", "Unit"))
    route_col = pick_column(headers, ("Adm.R", "adm_r", "Route"))
    note_col = pick_column(headers, ("Note", "note"))
    zh_col = pick_column(headers, ("中文名称", "中文名", "name_zh"))
    concepts: dict[str, ConceptRow] = {}
    for r in rows:
        code = r.get(code_col, "").strip().upper()
        if not code:
            continue
        row = concepts.get(code)
        if row is None:
            parent = _parent(code)
            row = concepts[code] = ConceptRow(code, r.get(name_col, "").strip(),
                                              [parent] if parent else [])
            if zh_col and r.get(zh_col):
                row.designations.append({"language": "zh-CN", "value": r[zh_col]})
        ddd = r.get(ddd_col or "", "").strip()
        if ddd and ddd.upper() != "NA":
            parts = [ddd, r.get(unit_col or "", "").strip(), r.get(route_col or "", "").strip()]
            row.properties.append({"code": "ddd", "valueString": " ".join(p for p in parts if p)})
            if parts[2]:
                row.properties.append({"code": "adm-route", "valueCode": parts[2]})
        if note_col and r.get(note_col):
            row.properties.append({"code": "ddd-note", "valueString": r[note_col]})
    # Parents absent from the file (an extract) are dropped rather than left dangling.
    for row in concepts.values():
        row.parents = [p for p in row.parents if p in concepts]
    return assemble_code_system(
        url=ATC_URL, name="ATC", title=f"Anatomical Therapeutic Chemical classification "
        f"with DDD ({version})", version=version,
        publisher="WHO Collaborating Centre for Drug Statistics Methodology",
        concepts=concepts.values(),
        properties=[("ddd", "string", "Defined daily dose: value, unit, route"),
                    ("adm-route", "code", "Administration route of a DDD"),
                    ("ddd-note", "string", "Note on the DDD")],
    )
