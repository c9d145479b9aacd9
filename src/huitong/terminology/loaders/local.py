"""A region's or an institution's local code list (CSV or XLSX).

Columns: ``code`` and ``display`` are required; ``zh``, ``en``, ``parent``, ``synonyms``
(separated by ``;`` or ``|``) and ``status`` (``inactive``/``retired`` marks a code
inactive) are optional. Chinese headers work too (代码, 名称, 中文名称, 英文名称, 上级代码,
别名, 状态). The display is in ``language`` (default ``zh-CN``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huitong.terminology.loaders._common import (
    SYNONYM,
    ConceptRow,
    assemble_code_system,
    pick_column,
    read_table,
    require_column,
)

__all__ = ["load_local_code_list"]


def load_local_code_list(
    path: Path | str, *, url: str, version: str, name: str, publisher: str,
    title: str | None = None, language: str = "zh-CN",
) -> dict[str, Any]:
    rows = read_table(path)
    headers = list(rows[0]) if rows else []
    code_col = require_column(path, headers, ("code", "代码", "编码"))
    display_col = require_column(path, headers, ("display", "名称", "显示名"))
    zh_col = pick_column(headers, ("zh", "中文名称", "中文名"))
    en_col = pick_column(headers, ("en", "英文名称", "英文名"))
    parent_col = pick_column(headers, ("parent", "上级代码", "父代码"))
    syn_col = pick_column(headers, ("synonyms", "别名", "同义词"))
    status_col = pick_column(headers, ("status", "状态"))
    concepts: dict[str, ConceptRow] = {}
    for r in rows:
        code = r.get(code_col, "").strip()
        if not code:
            continue
        row = ConceptRow(code, r.get(display_col, "").strip())
        for col, lang in ((zh_col, "zh-CN"), (en_col, "en")):
            if col and r.get(col) and r[col] != row.display:
                row.designations.append({"language": lang, "value": r[col]})
        if syn_col and r.get(syn_col):
            names = r[syn_col].replace("|", ";").replace("；", ";").split(";")
            row.designations += [{"language": language, "use": SYNONYM, "value": n.strip()}
                                 for n in names if n.strip()]
        if parent_col and r.get(parent_col):
            row.parents.append(r[parent_col].strip())
        if status_col and r.get(status_col, "").strip().lower() in (
            "inactive", "retired", "deprecated", "停用"
        ):
            row.inactive = True
        concepts[code] = row
    return assemble_code_system(
        url=url, name=name, title=title or name, version=version, publisher=publisher,
        concepts=concepts.values(), language=language,
    )
