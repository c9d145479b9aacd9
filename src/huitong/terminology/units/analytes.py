"""Conversions between mass and substance units for common analytes, keyed by LOINC code.

UCUM cannot convert mg/dL to mmol/L by itself: the two differ by the analyte's molar mass.
This table holds the molar masses (g/mol, from each molecular formula with IUPAC standard
atomic weights) and the preferred reporting unit (SI units, as Chinese laboratories report)
for analytes whose results arrive in either form. Each LOINC code names one analyte in one
specimen; mass-unit and substance-unit LOINC codes of the same analyte share an entry.
HbA1c is the exception: NGSP % and IFCC mmol/mol are related by the IFCC–NGSP master equation
(IFCC = 10.929 × (NGSP − 2.15); Hoelzel et al., Clin Chem 2004;50:166–174), not by a molar
mass.
"""

from __future__ import annotations

from dataclasses import dataclass

from huitong.fhir.errors import Category
from huitong.terminology._messages import error
from huitong.terminology.units.ucum import convert, dimension

__all__ = ["ANALYTES", "Analyte", "analyte_for", "convert_analyte"]


@dataclass(frozen=True, slots=True)
class Analyte:
    name: str
    name_zh: str
    molar_mass: float | None  # g/mol; None when the conversion is a formula (HbA1c)
    preferred_unit: str
    loinc: tuple[str, ...]


ANALYTES: tuple[Analyte, ...] = (
    # C6H12O6 = 180.156 g/mol.
    Analyte("Glucose", "葡萄糖", 180.156, "mmol/L",
            ("2345-7", "2339-0", "14749-6", "15074-8", "41653-7", "1558-6", "2340-8")),
    # Cholesterol C27H46O = 386.65 g/mol; HDL and LDL are reported as their cholesterol.
    Analyte("Cholesterol", "总胆固醇", 386.65, "mmol/L", ("2093-3", "14647-2")),
    Analyte("HDL cholesterol", "高密度脂蛋白胆固醇", 386.65, "mmol/L",
            ("2085-9", "14646-4")),
    Analyte("LDL cholesterol", "低密度脂蛋白胆固醇", 386.65, "mmol/L",
            ("18262-6", "13457-7", "2089-1", "22748-8")),
    # Triglycerides are conventionally converted as triolein, C57H104O6 = 885.43 g/mol.
    Analyte("Triglyceride", "甘油三酯", 885.43, "mmol/L", ("2571-8", "14927-8")),
    # Creatinine C4H7N3O = 113.12 g/mol; reported in µmol/L.
    Analyte("Creatinine", "肌酐", 113.12, "umol/L", ("2160-0", "14682-9", "38483-4")),
    # Urea nitrogen: mass of the two N atoms per urea molecule, 2 × 14.007 = 28.014 g/mol, so
    # mg/dL of urea nitrogen ÷ 2.8014 = mmol/L of urea.
    Analyte("Urea nitrogen", "尿素氮", 28.014, "mmol/L", ("3094-0", "6299-2", "14937-7")),
    # Uric acid C5H4N4O3 = 168.11 g/mol.
    Analyte("Uric acid", "尿酸", 168.11, "umol/L", ("3084-1", "14933-6")),
    # Calcium, atomic weight 40.078.
    Analyte("Calcium", "钙", 40.078, "mmol/L", ("17861-6", "2000-8", "49765-1")),
    # Bilirubin C33H36N4O6 = 584.67 g/mol.
    Analyte("Bilirubin total", "总胆红素", 584.67, "umol/L", ("1975-2", "14631-6")),
    Analyte("Hemoglobin A1c", "糖化血红蛋白", None, "%", ("4548-4", "17856-6", "59261-8")),
)

_BY_LOINC = {code: a for a in ANALYTES for code in a.loinc}
_MASS_CONC = "[mass] / [length] ** 3"
_SUBST_CONC = "[substance] / [length] ** 3"


def analyte_for(loinc_code: str | None) -> Analyte | None:
    return _BY_LOINC.get(loinc_code or "")


def _hba1c(value: float, from_unit: str, to_unit: str) -> float | None:
    ngsp = {"%"}
    ifcc = {"mmol/mol"}
    if from_unit in ngsp and to_unit in ifcc:
        return 10.929 * (value - 2.15)
    if from_unit in ifcc and to_unit in ngsp:
        return value / 10.929 + 2.15
    return None


def convert_analyte(value: float, from_unit: str, to_unit: str, loinc_code: str | None
                    ) -> float:
    """``value`` of the analyte ``loinc_code`` converted, bridging mass and substance units
    by molar mass where needed. Failure contract: UNPROCESSABLE when no rule applies."""
    analyte = analyte_for(loinc_code)
    if analyte is not None and analyte.molar_mass is None:
        special = _hba1c(value, from_unit, to_unit)
        if special is not None:
            return special
        if from_unit in ("%", "mmol/mol") or to_unit in ("%", "mmol/mol"):
            if from_unit == to_unit:
                return value
            raise error(Category.UNPROCESSABLE, "incompatible-units", source=from_unit,
                        target=to_unit)
    src, dst = dimension(from_unit), dimension(to_unit)
    if src == dst:
        return convert(value, from_unit, to_unit)
    if analyte is None or analyte.molar_mass is None:
        raise error(Category.UNPROCESSABLE, "incompatible-units", source=from_unit,
                    target=to_unit, why=" (no molar mass for this test)",
                    why_zh="（该检验项目没有摩尔质量）")
    m = analyte.molar_mass
    pairs = {(_MASS_CONC, _SUBST_CONC): ("g/L", "mol/L", 1 / m),
             (_SUBST_CONC, _MASS_CONC): ("mol/L", "g/L", m),
             ("[mass]", "[substance]"): ("g", "mol", 1 / m),
             ("[substance]", "[mass]"): ("mol", "g", m)}
    rule = pairs.get((src, dst))
    if rule is None:
        raise error(Category.UNPROCESSABLE, "incompatible-units", source=from_unit,
                    target=to_unit)
    via_from, via_to, factor = rule
    return convert(convert(value, from_unit, via_from) * factor, via_to, to_unit)
