"""UCUM units and analyte conversions: round trips and refusals."""

from __future__ import annotations

import pytest

from huitong.fhir.errors import Category, FhirError
from huitong.terminology.units import (
    ORIGINAL_QUANTITY_URL,
    canonical_unit,
    convert,
    convert_analyte,
    is_valid_unit,
    normalise_quantity,
    same_unit,
    to_canonical,
)


@pytest.mark.parametrize(("unit", "valid"), [
    ("mg/dL", True), ("mmol/L", True), ("mm[Hg]", True), ("10*9/L", True), ("/min", True),
    ("{beats}/min", True), ("mL/min/{1.73_m2}", True), ("kg/m2", True), ("Cel", True),
    ("[IU]/L", True), ("mEq/L", False), ("mmHg", False), ("", False), ("furlong/fortnight", False),
])
def test_is_valid_unit(unit, valid):
    assert is_valid_unit(unit) is valid


@pytest.mark.parametrize(("value", "a", "b", "expected"), [
    (1, "g/dL", "g/L", 10), (120, "mm[Hg]", "kPa", 15.999), (37, "Cel", "[degF]", 98.6),
    (1, "[lb_av]", "kg", 0.45359237), (12, "[in_i]", "cm", 30.48), (5, "10*3/uL", "10*9/L", 5),
])
def test_convert_and_round_trip(value, a, b, expected):
    there = convert(value, a, b)
    assert there == pytest.approx(expected, rel=1e-3)
    assert convert(there, b, a) == pytest.approx(value, rel=1e-9)


def test_incompatible_and_invalid_units():
    with pytest.raises(FhirError) as exc:
        convert(1, "mg/dL", "mmol/L")  # needs a molar mass
    assert exc.value.category is Category.UNPROCESSABLE
    with pytest.raises(FhirError) as exc:
        convert(1, "[IU]/L", "10*9/L")  # arbitrary units never convert by dimension
    assert exc.value.category is Category.UNPROCESSABLE
    with pytest.raises(FhirError) as exc:
        convert(1, "mEq/L", "mmol/L")
    assert exc.value.category is Category.INVALID
    assert "UCUM" in exc.value.message and "单位" in exc.value.message


def test_canonical_forms():
    assert canonical_unit("mg/dL") == "g.m-3"
    assert canonical_unit("mm[Hg]") == "g.m-1.s-2"
    assert canonical_unit("mmol/L") == "mol.m-3"
    assert to_canonical(5, "mg/dL") == (50.0, "g.m-3")
    assert to_canonical(1, "kg") == (1000.0, "g")
    assert same_unit("mL/min/{1.73_m2}", "mL/min") and not same_unit("mL", "L")


@pytest.mark.parametrize(("loinc", "value", "a", "b", "expected"), [
    ("2345-7", 100, "mg/dL", "mmol/L", 5.551),   # glucose, 180.156 g/mol
    ("2093-3", 200, "mg/dL", "mmol/L", 5.173),   # cholesterol, 386.65 g/mol
    ("2160-0", 1, "mg/dL", "umol/L", 88.40),     # creatinine, 113.12 g/mol
    ("2571-8", 150, "mg/dL", "mmol/L", 1.694),   # triglyceride as triolein
    ("4548-4", 7.0, "%", "mmol/mol", 53.0),      # HbA1c, IFCC–NGSP master equation
])
def test_analyte_conversions_and_round_trips(loinc, value, a, b, expected):
    there = convert_analyte(value, a, b, loinc)
    assert there == pytest.approx(expected, rel=2e-3)
    assert convert_analyte(there, b, a, loinc) == pytest.approx(value, rel=2e-3)


def test_analyte_conversion_refused_without_molar_mass():
    with pytest.raises(FhirError) as exc:
        convert_analyte(100, "mg/dL", "mmol/L", "8480-6")
    assert exc.value.category is Category.UNPROCESSABLE
    with pytest.raises(FhirError):
        convert_analyte(7, "%", "mmol/L", "4548-4")


def test_normalise_quantity_keeps_original():
    q = {"value": 95, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    out = normalise_quantity(q, loinc_code="2339-0")
    assert (out["value"], out["code"], out["unit"]) == (5.27, "mmol/L", "mmol/L")
    assert out["extension"] == [{"url": ORIGINAL_QUANTITY_URL, "valueQuantity": q}]
    assert q["code"] == "mg/dL"  # input untouched


@pytest.mark.parametrize(("q", "loinc", "expected"), [
    ({"value": 120, "unit": "mmHg"}, "8480-6", (120, "mm[Hg]")),  # alias → UCUM code only
    ({"value": 98.6, "unit": "°F"}, None, (37.0, "Cel")),
    ({"value": 160, "system": "http://unitsofmeasure.org", "code": "[lb_av]"}, None,
     (72.6, "kg")),
    ({"value": 1.2, "unit": "mg/dl"}, "2160-0", (106.0, "umol/L")),
])
def test_normalise_quantity_cases(q, loinc, expected):
    out = normalise_quantity(q, loinc_code=loinc)
    assert (out["value"], out["code"]) == expected


@pytest.mark.parametrize("q", [
    {"value": 5.2, "system": "http://unitsofmeasure.org", "code": "mmol/L"},  # already there
    {"value": 3, "unit": "tablets"},  # not UCUM
    {"unit": "mg/dL"},  # no value
    {"value": 80, "system": "http://unitsofmeasure.org", "code": "/min"},  # no preference
])
def test_normalise_quantity_leaves_alone(q):
    assert normalise_quantity(q, loinc_code="2345-7" if q.get("code") == "mmol/L" else None
                              ) is None


def test_significant_digits_are_counted_as_decimal_counts_them():
    """The text count of significant digits (the normalised value keeps them) agrees with
    Decimal.normalize for the shapes Python writes numbers in, and defers to it otherwise."""
    import random
    from decimal import Decimal

    from huitong.terminology.units.quantity import _digits, _significant

    def reference(like: object) -> int:
        return len(Decimal(str(like)).normalize().as_tuple().digits)

    rng = random.Random(6)
    values: list[object] = [
        0, 0.0, -0.0, 1, 10, 100, 120, 1200, -5, 0.1, 0.001, 1e-05, 1.5e-7, 1e22, 1.5e300,
        5e-324, 29.682599166871046, 100.0, float("inf"), float("nan"), -float("inf"),
        123456789012345678901234567890, 10**40,
    ]  # fmt: skip
    for _ in range(20_000):
        r = rng.random()
        values += [r * 10 ** rng.randint(-30, 30), round(r * 1000, rng.randint(0, 5)),
                   rng.randint(-10**6, 10**6), -r]  # fmt: skip
    for v in values:
        assert _digits(v) == reference(v), v
    assert _significant(5.55084, 100) == 5.55  # three digits at least
    assert _significant(5.550843, 99.12) == 5.551
