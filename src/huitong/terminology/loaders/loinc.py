"""LOINC from the operator's release files: ``Loinc.csv`` and linguistic variants.

``Loinc.csv`` (https://loinc.org/kb/users-guide/) gives ``LOINC_NUM``, the six parts
(``COMPONENT`` … ``METHOD_TYP``), ``CLASS``, ``STATUS``, ``SHORTNAME``,
``LONG_COMMON_NAME``, ``RELATEDNAMES2``, ``EXAMPLE_UCUM_UNITS`` and more. The display is
the long common name; the short name and (optionally) the related names become designations;
the parts become properties named as LOINC names them, so filters like
``COMPONENT = Glucose`` work. ``DEPRECATED`` codes are inactive. A linguistic variant file
(for Chinese, ``zhCN…LinguisticVariant.csv``) adds designations in that language: its
``LinguisticVariantDisplayName`` or long common name, else the six parts joined with ``:``
(the fully specified name form), plus its related names as synonyms.
"""

from __future__ import annotations

from collections.abc import Sequence
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

__all__ = ["LOINC_PROPERTIES", "LOINC_URL", "load_loinc"]

LOINC_URL = "http://loinc.org"
LOINC_PROPERTIES = (
    "COMPONENT", "PROPERTY", "TIME_ASPCT", "SYSTEM", "SCALE_TYP", "METHOD_TYP", "CLASS",
    "CLASSTYPE", "ORDER_OBS", "STATUS", "EXAMPLE_UCUM_UNITS",
)
_PARTS = ("COMPONENT", "PROPERTY", "TIME_ASPCT", "SYSTEM", "SCALE_TYP", "METHOD_TYP")
_SHORTNAME_USE = {"system": LOINC_URL, "code": "SHORTNAME", "display": "Short name"}


def _synonyms(text: str, language: str) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for name in text.split(";"):
        name = name.strip()
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            out.append({"language": language, "use": SYNONYM, "value": name})
    return out


def load_loinc(
    path: Path | str, *, version: str,
    variants: Sequence[tuple[Path | str, str]] = (), related_names: bool = True,
) -> dict[str, Any]:
    """LOINC as a CodeSystem; ``variants`` are ``(linguistic variant file, language)``."""
    rows = read_table(path)
    headers = list(rows[0]) if rows else []
    num = require_column(path, headers, ("LOINC_NUM",))
    long_name = pick_column(headers, ("LONG_COMMON_NAME",))
    short = pick_column(headers, ("SHORTNAME",))
    related = pick_column(headers, ("RELATEDNAMES2",))
    props = [(p, col) for p in LOINC_PROPERTIES if (col := pick_column(headers, (p,)))]
    concepts: dict[str, ConceptRow] = {}
    for r in rows:
        code = r.get(num, "").strip()
        if not code:
            continue
        display = r.get(long_name or "", "") or ":".join(r.get(p, "") for p in _PARTS)
        row = ConceptRow(code, display)
        if short and r.get(short):
            row.designations.append({"language": "en-US", "use": _SHORTNAME_USE,
                                     "value": r[short]})
        if related_names and related and r.get(related):
            row.designations += _synonyms(r[related], "en-US")
        for p, col in props:
            value = r.get(col, "")
            if value:
                row.properties.append({"code": p, "valueString": value})
        row.inactive = r.get("STATUS", "").upper() == "DEPRECATED"
        concepts[code] = row
    for vpath, lang in variants:
        vrows = read_table(vpath)
        vheaders = list(vrows[0]) if vrows else []
        vnum = require_column(vpath, vheaders, ("LOINC_NUM",))
        vdisplay = [c for c in (pick_column(vheaders, ("LinguisticVariantDisplayName",)),
                                pick_column(vheaders, ("LONG_COMMON_NAME",))) if c]
        vrelated = pick_column(vheaders, ("RELATEDNAMES2",))
        for r in vrows:
            row = concepts.get(r.get(vnum, "").strip())
            if row is None:
                continue
            name = next((r[c] for c in vdisplay if r.get(c)), "") or ":".join(
                r.get(p, "") for p in _PARTS if r.get(p))
            if name:
                row.designations.append({"language": lang, "value": name})
            if related_names and vrelated and r.get(vrelated):
                row.designations += _synonyms(r[vrelated], lang)
    return assemble_code_system(
        url=LOINC_URL, name="LOINC", title=f"LOINC {version}", version=version,
        publisher="Regenstrief Institute, Inc.", concepts=concepts.values(), language="en-US",
        properties=[(p, "string", p) for p in LOINC_PROPERTIES],
        copyright="This material contains content from LOINC (http://loinc.org). LOINC is "
        "copyright © Regenstrief Institute, Inc. and the LOINC Committee.",
        hierarchy_meaning="is-a",
    )
