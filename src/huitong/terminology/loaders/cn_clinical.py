"""China's national clinical editions, from the spreadsheets the NHC publishes to operators.

- ICD-10 国家临床版 2.0 (疾病分类与代码): columns 诊断代码/代码 and 诊断名称/名称, optionally
  the chapter (章/章代码范围, 章的名称), section (节代码范围, 节名称), category (类目代码,
  类目名称) and subcategory (亚目代码, 亚目名称) columns, synonyms (别名/同义词) and an
  English name (英文名称).
- ICD-9-CM-3 手术操作分类代码国家临床版 3.0: columns 手术操作代码/代码 and 手术操作名称/名称,
  optionally 类目/亚目/细目 columns and 操作类别 (手术, 介入治疗, 治疗性操作, 诊断性操作).

When the grouping columns are present they build the hierarchy (grouping rows become
``notSelectable``); otherwise each code's parent is its longest listed prefix. CSV (UTF-8 or
GB18030) and XLSX are read; a title row above the header is skipped. Display language is
``zh-CN``. Failure contract: INVALID naming the file when the code or name column is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huitong.terminology.loaders._common import (
    HUITONG_CODE_SYSTEM_BASE,
    SYNONYM,
    ConceptRow,
    assemble_code_system,
    parents_by_prefix,
    pick_column,
    read_table,
    require_column,
)

__all__ = ["ICD9CM3_CN_URL", "ICD10_CN_URL", "load_icd9cm3_cn_clinical", "load_icd10_cn_clinical"]

ICD10_CN_URL = HUITONG_CODE_SYSTEM_BASE + "icd-10-cn-clinical"
ICD9CM3_CN_URL = HUITONG_CODE_SYSTEM_BASE + "icd-9-cm-3-cn-clinical"

_DX_LEVELS: Sequence[tuple[Sequence[str], Sequence[str]]] = (
    (("章代码范围", "章", "章代码"), ("章的名称", "章名称")),
    (("节代码范围", "节", "节代码"), ("节名称", "节的名称")),
    (("类目代码", "类目"), ("类目名称",)),
    (("亚目代码", "亚目"), ("亚目名称",)),
)
_PX_LEVELS: Sequence[tuple[Sequence[str], Sequence[str]]] = (
    (("章代码范围", "章", "章代码"), ("章的名称", "章名称")),
    (("类目代码", "类目"), ("类目名称",)),
    (("亚目代码", "亚目"), ("亚目名称",)),
    (("细目代码", "细目"), ("细目名称",)),
)


def _split_names(text: str) -> list[str]:
    for sep in ("；", ";", "|", "、"):
        text = text.replace(sep, "\n")
    return [t.strip() for t in text.split("\n") if t.strip()]


def _load(
    path: Path | str, *, code_cols: Sequence[str], name_cols: Sequence[str],
    levels: Sequence[tuple[Sequence[str], Sequence[str]]], extra: dict[str, Sequence[str]],
) -> list[ConceptRow]:
    rows = read_table(path)
    headers = list(rows[0]) if rows else []
    code_col = require_column(path, headers, code_cols)
    name_col = require_column(path, headers, name_cols)
    level_cols = [
        (c, pick_column(headers, n)) for c, n in
        ((pick_column(headers, cs), ns) for cs, ns in levels) if c is not None
    ]
    syn_col = pick_column(headers, ("别名", "同义词", "同义名称"))
    en_col = pick_column(headers, ("英文名称", "英文名", "English"))
    extra_cols = {prop: pick_column(headers, names) for prop, names in extra.items()}

    out: dict[str, ConceptRow] = {}
    for r in rows:
        code = r.get(code_col, "").strip()
        if not code:
            continue
        chain: list[str] = []
        for level_code, level_name in level_cols:
            group = r.get(level_code, "").strip()
            if group and group != code and (not chain or chain[-1] != group):
                if group not in out:
                    out[group] = ConceptRow(group, r.get(level_name or "", "").strip() or group,
                                            [chain[-1]] if chain else [], abstract=True)
                chain.append(group)
        row = out.get(code)
        if row is None:
            row = out[code] = ConceptRow(code, r.get(name_col, "").strip())
        else:  # a grouping code that is also a usable row
            row.abstract = False
            row.display = r.get(name_col, "").strip() or row.display
        if chain and chain[-1] not in row.parents:
            row.parents.append(chain[-1])
        if syn_col:
            row.designations += [{"language": "zh-CN", "use": SYNONYM, "value": s}
                                 for s in _split_names(r.get(syn_col, ""))]
        if en_col and r.get(en_col):
            row.designations.append({"language": "en", "value": r[en_col]})
        for prop, col in extra_cols.items():
            if col and r.get(col):
                row.properties.append({"code": prop, "valueString": r[col]})
    if not level_cols:
        parents = parents_by_prefix(out)
        for code, parent in parents.items():
            out[code].parents = [parent]
    return list(out.values())


def load_icd10_cn_clinical(path: Path | str, *, version: str = "2.0") -> dict[str, Any]:
    """疾病分类与代码国家临床版 (ICD-10 national clinical edition) as a CodeSystem."""
    concepts = _load(
        path, code_cols=("诊断代码", "条目代码", "疾病代码", "主要编码", "代码", "编码"),
        name_cols=("诊断名称", "条目名称", "疾病名称", "名称"), levels=_DX_LEVELS, extra={},
    )
    return assemble_code_system(
        url=ICD10_CN_URL, name="ICD10CNClinical",
        title=f"疾病分类与代码国家临床版 {version} (ICD-10 national clinical edition)",
        version=version, publisher="国家卫生健康委员会 (National Health Commission of the PRC)",
        concepts=concepts, language="zh-CN", case_sensitive=False,
    )


def load_icd9cm3_cn_clinical(path: Path | str, *, version: str = "3.0") -> dict[str, Any]:
    """手术操作分类代码国家临床版 (ICD-9-CM-3 national clinical edition) as a CodeSystem."""
    concepts = _load(
        path, code_cols=("手术操作代码", "操作代码", "代码", "编码"),
        name_cols=("手术操作名称", "操作名称", "名称"), levels=_PX_LEVELS,
        extra={"category": ("操作类别", "类别", "手术操作类别")},
    )
    return assemble_code_system(
        url=ICD9CM3_CN_URL, name="ICD9CM3CNClinical",
        title=f"手术操作分类代码国家临床版 {version} (ICD-9-CM-3 national clinical edition)",
        version=version, publisher="国家卫生健康委员会 (National Health Commission of the PRC)",
        concepts=concepts, language="zh-CN",
        properties=[("category", "string", "操作类别 / procedure category")],
    )
