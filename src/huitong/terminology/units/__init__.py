"""UCUM units: validation, conversion, canonical form, analyte-aware normalisation."""

from huitong.terminology.units.analytes import ANALYTES, Analyte, analyte_for, convert_analyte
from huitong.terminology.units.quantity import (
    ORIGINAL_QUANTITY_URL,
    UNIT_ALIASES,
    normalise_quantity,
    preferred_unit,
    ucum_code_of,
)
from huitong.terminology.units.ucum import (
    UCUM_SYSTEM,
    canonical_unit,
    convert,
    dimension,
    is_valid_unit,
    same_unit,
    to_canonical,
)

__all__ = [
    "ANALYTES", "ORIGINAL_QUANTITY_URL", "UCUM_SYSTEM", "UNIT_ALIASES", "Analyte",
    "analyte_for", "canonical_unit", "convert", "convert_analyte", "dimension",
    "is_valid_unit", "normalise_quantity", "preferred_unit", "same_unit", "to_canonical",
    "ucum_code_of",
]
