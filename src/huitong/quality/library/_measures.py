"""Predicates about measured values: physiological bounds, units that fit the test, ranges.

A quantity's unit is its UCUM ``code`` (https://hl7.org/fhir/R4/datatypes.html#Quantity),
or its ``unit`` text when no code is sent (many feeds put the UCUM code there). Values are
converted to the unit a bound is written in (:func:`huitong.quality.units.conversion`), so
98.6 [degF] and 37 Cel are the same temperature; a value whose unit cannot be converted is
not judged here (the unit rules report it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from huitong.quality.codes import LAB_PROPERTIES, LOINC, PROPERTY_DIMENSIONS, UCUM
from huitong.quality.model import Outcome, ParamValue
from huitong.quality.predicates import (
    PASS,
    Facts,
    InlineSource,
    Runner,
    codes,
    number,
    specialised,
    text,
)
from huitong.quality.units import conversion, dimension_of

__all__ = ["loinc_quantities", "quantity_unit"]

_MASS_CONCENTRATION = (("length", -3), ("mass", 1))
_SUBSTANCE_CONCENTRATION = (("length", -3), ("substance", 1))


def quantity_unit(quantity: Mapping[str, Any]) -> str | None:
    code = quantity.get("code")
    if isinstance(code, str) and code:
        return code
    unit = quantity.get("unit")
    return unit if isinstance(unit, str) and unit else None


def _loinc_codes(concept: Any) -> Iterator[str]:
    if isinstance(concept, dict):
        items = concept.get("coding")
        if isinstance(items, list):
            for c in items:
                if isinstance(c, dict) and c.get("system") == LOINC:
                    code = c.get("code")
                    if isinstance(code, str):
                        yield code


def loinc_quantities(
    observation: Mapping[str, Any], facts: Facts
) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``(LOINC code, FHIRPath, valueQuantity)`` for the Observation's own value and each
    component's value, one entry per LOINC coding; computed once per evaluation."""
    memo = facts.memo
    found = memo.get("loinc_quantities")
    if found is not None:
        return found  # type: ignore[no-any-return]
    out: list[tuple[str, str, Mapping[str, Any]]] = []
    value = observation.get("valueQuantity")
    if isinstance(value, dict):
        # _loinc_codes of the resource's own code, spelled out: this runs on every
        # Observation, and the generator cost more than its few lookups.
        concept = observation.get("code")
        items = concept.get("coding") if isinstance(concept, dict) else None
        if isinstance(items, list):
            for c in items:
                if isinstance(c, dict) and c.get("system") == LOINC:
                    code = c.get("code")
                    if isinstance(code, str):
                        out.append((code, "Observation.value.ofType(Quantity)", value))
    components = observation.get("component")
    if isinstance(components, list):
        for i, comp in enumerate(components):
            if isinstance(comp, dict) and isinstance(comp.get("valueQuantity"), dict):
                where = f"Observation.component[{i}].value.ofType(Quantity)"
                for code in _loinc_codes(comp.get("code")):
                    out.append((code, where, comp["valueQuantity"]))
    memo["loinc_quantities"] = out
    return out


def _convert(value: float, unit: str, target: str, molar_mass: float) -> float | None:
    factor = conversion(unit, target)
    if factor is not None:
        return value * factor[0] + factor[1]
    if molar_mass <= 0:
        return None
    # Mass and substance concentrations of one analyte convert through its molar mass.
    source_dim, target_dim = dimension_of(unit), dimension_of(target)
    if source_dim == _MASS_CONCENTRATION and target_dim == _SUBSTANCE_CONCENTRATION:
        to_g = conversion(unit, "g/L")
        to_target = conversion("mol/L", target)
        if to_g and to_target:
            return value * to_g[0] / molar_mass * to_target[0]
    if source_dim == _SUBSTANCE_CONCENTRATION and target_dim == _MASS_CONCENTRATION:
        to_mol = conversion(unit, "mol/L")
        to_target = conversion("g/L", target)
        if to_mol and to_target:
            return value * to_mol[0] * molar_mass * to_target[0]
    return None


@specialised("quantity-in-range", gate=(LOINC, "codes"))
def quantity_in_range(params: Mapping[str, ParamValue]) -> Runner:
    """Every value (or component value) coded with one of ``params.codes`` lies within
    ``[params.low, params.high]`` once converted to ``params.unit``."""
    wanted, target = frozenset(codes(params, "codes")), text(params, "unit")
    low, high = number(params, "low"), number(params, "high")
    molar_mass = number(params, "molar_mass") if "molar_mass" in params else 0.0

    def check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
        judged = False
        for code, where, quantity in loinc_quantities(resource, facts):
            if code not in wanted:
                continue
            value, unit = quantity.get("value"), quantity_unit(quantity)
            if not isinstance(value, int | float) or isinstance(value, bool) or unit is None:
                continue
            converted = _convert(float(value), unit, target, molar_mass)
            if converted is None:
                continue
            judged = True
            if not low <= converted <= high:
                return Outcome(False, where, {"value": value, "value_unit": unit})
        return PASS if judged else None

    return check


def _lab_unit(
    params: Mapping[str, ParamValue],
) -> tuple[dict[tuple[str, str], bool | None], Runner]:
    """The check of one lab-unit-fits-test rule and its memo of ``(property, unit)`` →
    verdict (the plan's inline form reads the memo, see :func:`_lab_unit_inline`)."""
    original_url = text(params, "original_extension")
    # (property, unit) → None (the unit is not UCUM: not judged here) or whether the unit
    # measures that property. A region sends the same few hundred pairs again and again;
    # the answer is otherwise a unit lookup and a comparison of dimension tuples.
    verdicts: dict[tuple[str, str], bool | None] = {}

    def verdict(prop: str, unit: str) -> bool | None:
        dimension = dimension_of(unit)
        found = None if dimension is None else dimension in _allowed(prop)
        if len(verdicts) >= 16_384:
            verdicts.clear()
        verdicts[(prop, unit)] = found
        return found

    def check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
        judged = False
        for code, where, quantity in loinc_quantities(resource, facts):
            prop = LAB_PROPERTIES.get(code)
            if prop is None:
                continue
            unit = quantity_unit(_original(quantity, original_url) or quantity)
            if unit is None:
                continue
            found = verdicts.get((prop, unit), _UNSEEN)
            if found is _UNSEEN:
                found = verdict(prop, unit)
            if found is None:
                continue  # not UCUM: the UCUM conformance rule reports it
            judged = True
            if not found:
                return Outcome(False, where, {"code": code, "value_unit": unit, "property": prop})
        return PASS if judged else None

    return verdicts, check


def _lab_unit_inline(params: Mapping[str, ParamValue], src: InlineSource) -> None:
    # Nearly every Observation is one value under one LOINC coding, no components, no
    # original quantity kept: its unit's verdict is a lookup in the check's memo (a pass,
    # or not UCUM: nothing judged). Neither a value nor components: nothing to judge. A
    # failure, a pair not seen yet and every other shape are the check's to answer.
    verdicts, check = _lab_unit(params)
    memo, call, props = src.bind(verdicts), src.bind(check), src.bind(LAB_PROPERTIES)
    passed = src.bind(PASS)
    single = src.coding("code")
    # Validated (see huitong.quality.plan.ValidatedSource), a quantity is an object and its
    # code and unit non-empty strings when there.
    validated = src.validated
    unit = (
        ["        _iu = _iq.get('code')",
         "        if _iu is None:",
         "            _iu = _iq.get('unit')"] if validated
        else ["        _iu = _iq.get('code')",
              "        if not (isinstance(_iu, str) and _iu):",
              "            _iu = _iq.get('unit')",
              "            if not (isinstance(_iu, str) and _iu):",
              "                _iu = None"]
    )  # fmt: skip
    src.lines += [
        "_iq = r.get('valueQuantity')",
        "_ix = r.get('component')",
        f"if _ix is None and {'_iq is None' if validated else 'type(_iq) is not dict'}:",
        "    o = None",
        f"elif (_ix is None and 'extension' not in _iq and {single} is not None",
        f"        and {single}[0] == {LOINC!r}):",
        f"    _ip = {props}.get({single}[1])",
        "    if _ip is None:",
        "        o = None",
        "    else:",
        "        # quantity_unit, written out",
        *unit,
        "        if _iu is None:",
        "            o = None",
        "        else:",
        f"            _iw = {memo}.get((_ip, _iu), 0)",
        f"            o = {passed} if _iw is True else None if _iw is None else {call}(r, facts)",
        "else:",
        f"    o = {call}(r, facts)",
    ]


@specialised("lab-unit-fits-test", inline=_lab_unit_inline)
def lab_unit_fits_test(params: Mapping[str, ParamValue]) -> Runner:
    """A value's UCUM unit measures what the LOINC test's property says (a mass
    concentration in mg/dL, not mmol/L; a count per volume, not a fraction), per
    :data:`huitong.quality.codes.LAB_PROPERTIES`.

    The unit judged is the sender's: when terminology normalisation has converted the value
    (glucose mg/dL → mmol/L under a mass-concentration code), the original quantity kept in
    the ``params.original_extension`` extension is the one checked.
    """
    return _lab_unit(params)[1]


_UNSEEN: Any = object()


def _original(quantity: Mapping[str, Any], url: str) -> Mapping[str, Any] | None:
    extensions = quantity.get("extension")
    if extensions is None:
        return None
    if isinstance(extensions, list):
        for ext in extensions:
            if isinstance(ext, dict) and ext.get("url") == url:
                original = ext.get("valueQuantity")
                return original if isinstance(original, dict) else None
    return None


_ALLOWED: dict[str, frozenset[tuple[tuple[str, int], ...]]] = {}


def _allowed(prop: str) -> frozenset[tuple[tuple[str, int], ...]]:
    found = _ALLOWED.get(prop)
    if found is None:
        found = frozenset(tuple(sorted(d)) for d in PROPERTY_DIMENSIONS[prop])
        _ALLOWED[prop] = found
    return found


def _unit_is_ucum_inline(params: Mapping[str, ParamValue], src: InlineSource) -> None:
    # The usual shape written out (one valueQuantity object claiming UCUM with a known
    # code, no components: a pass; neither a value nor components: nothing to judge);
    # anything else is the check's call.
    full, dimension = src.bind(_unit_is_ucum), src.bind(dimension_of)
    passed, ucum = src.bind(PASS), src.bind(UCUM)
    # Validated, a quantity is an object and its code a string when there.
    validated = src.validated
    quantity = "" if validated else "type(_iq) is dict and "
    code = "(_ic := _iq.get('code')) is not None" if validated else (
        "type(_ic := _iq.get('code')) is str"
    )  # fmt: skip
    src.lines += [
        "_iq = r.get('valueQuantity')",
        "if r.get('component') is not None:",
        f"    o = {full}(r, facts)",
        "elif _iq is None:",
        "    o = None",
        f"elif ({quantity}_iq.get('system') == {ucum}",
        f"      and {code} and {dimension}(_ic) is not None):",
        f"    o = {passed}",
        "else:",
        f"    o = {full}(r, facts)",
    ]


@specialised("quantity-unit-is-ucum", inline=_unit_is_ucum_inline)
def quantity_unit_is_ucum(params: Mapping[str, ParamValue]) -> Runner:
    """A value that claims UCUM (``system`` = http://unitsofmeasure.org) has a valid code."""
    return _unit_is_ucum


def _unit_is_ucum(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
    components = resource.get("component")
    if components is None:  # the usual shape: one value, no components
        quantity = resource.get("valueQuantity")
        if not isinstance(quantity, dict) or quantity.get("system") != UCUM:
            return None
        code = quantity.get("code")
        if isinstance(code, str) and dimension_of(code) is not None:
            return PASS
        where = "value.ofType(Quantity)"
        return Outcome(False, f"{resource.get('resourceType')}.{where}.code", {"value_unit": code})
    found = False
    candidates: list[tuple[str, Any]] = [("value.ofType(Quantity)", resource.get("valueQuantity"))]
    if isinstance(components, list):
        candidates += [
            (f"component[{i}].value.ofType(Quantity)", c.get("valueQuantity"))
            for i, c in enumerate(components)
            if isinstance(c, dict)
        ]
    for where, quantity in candidates:
        if not isinstance(quantity, dict) or quantity.get("system") != UCUM:
            continue
        found = True
        code = quantity.get("code")
        if not isinstance(code, str) or dimension_of(code) is None:
            rtype = resource.get("resourceType")
            return Outcome(False, f"{rtype}.{where}.code", {"value_unit": code})
    return PASS if found else None


def _checked_unless(
    name: str,
    nothing_when: str,
    check: Runner,
    doc: str,
    nothing_when_valid: Callable[[InlineSource], str] | None = None,
) -> None:
    """Register ``check`` as the predicate ``name`` (it takes no parameters), with an inline
    form that answers "nothing to judge" (None) without the call when the source
    ``nothing_when``, an expression over the resource ``r``, holds: the answer for most
    resources, which lack what the check compares. ``nothing_when_valid`` gives the same
    test for a validated resource (see huitong.quality.plan.ValidatedSource)."""

    def inline(params: Mapping[str, ParamValue], src: InlineSource) -> None:
        when = (
            nothing_when_valid(src)
            if nothing_when_valid is not None and src.validated
            else nothing_when
        )  # fmt: skip
        src.lines += [f"if {when}:", "    o = None", "else:",
                      f"    o = {src.bind(check)}(r, facts)"]  # fmt: skip

    def factory(params: Mapping[str, ParamValue]) -> Runner:
        return check

    factory.__doc__ = doc
    specialised(name, inline=inline)(factory)


def _blood_pressure_check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
    values: dict[str, float] = {}
    for code, _where, quantity in loinc_quantities(resource, facts):
        if code not in ("8480-6", "8462-4"):
            continue
        value, unit = quantity.get("value"), quantity_unit(quantity)
        if isinstance(value, int | float) and unit is not None:
            converted = _convert(float(value), unit, "mm[Hg]", 0.0)
            if converted is not None:
                values[code] = converted
    if len(values) < 2:
        return None
    if values["8462-4"] >= values["8480-6"]:
        return Outcome(
            False,
            "Observation.component",
            {"systolic": values["8480-6"], "diastolic": values["8462-4"]},
        )
    return PASS


def _reference_range_check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
    ranges = resource.get("referenceRange")
    if ranges is None or not isinstance(ranges, list):
        return None
    judged = False
    for i, item in enumerate(ranges):
        if not isinstance(item, dict):
            continue
        low, high = item.get("low"), item.get("high")
        if not isinstance(low, dict) or not isinstance(high, dict):
            continue
        lv, hv = low.get("value"), high.get("value")
        if not isinstance(lv, int | float) or not isinstance(hv, int | float):
            continue
        lu, hu = quantity_unit(low), quantity_unit(high)
        if lu is not None and hu is not None and lu != hu:
            converted = _convert(float(lv), lu, hu, 0.0)
            if converted is None:
                continue
            lv = converted
        judged = True
        if lv > hv:
            return Outcome(False, f"{resource.get('resourceType')}.referenceRange[{i}]")
    return PASS if judged else None


def _dose_positive_check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
    dosages = resource.get("dosageInstruction")
    if not isinstance(dosages, list):
        return None
    judged = False
    for i, dosage in enumerate(dosages):
        rates = dosage.get("doseAndRate") if isinstance(dosage, dict) else None
        for j, rate in enumerate(rates if isinstance(rates, list) else ()):
            dose = rate.get("doseQuantity") if isinstance(rate, dict) else None
            value = dose.get("value") if isinstance(dose, dict) else None
            if isinstance(value, int | float):
                judged = True
                if value <= 0:
                    return Outcome(
                        False,
                        f"MedicationRequest.dosageInstruction[{i}].doseAndRate[{j}].dose",
                        {"value": value},
                    )
    return PASS if judged else None


# The pressures come from components or from two LOINC codings of the resource's own code;
# the ranges and doses from their lists: without them there is nothing to compare.
_checked_unless(
    "blood-pressure-order",
    "r.get('component') is None and not (type(_ic := r.get('code')) is dict"
    " and type(_il := _ic.get('coding')) is list and len(_il) > 1)",
    _blood_pressure_check,
    "In a blood-pressure panel, the diastolic value is below the systolic one.",
    # Validated, the codings of a code object are an array when there; the plan's single
    # coding of it (one coding) answers first.
    lambda src: (
        f"r.get('component') is None and ({src.coding('code')} is not None"
        " or type(_ic := r.get('code')) is not dict or len(_ic.get('coding', ())) < 2)"
    ),
)
_checked_unless(
    "reference-range-ordered",
    "r.get('referenceRange') is None",
    _reference_range_check,
    "Each reference range with both bounds has ``low`` ≤ ``high`` (compared after unit "
    "conversion).",
)
_checked_unless(
    "dose-positive",
    "not isinstance(r.get('dosageInstruction'), list)",
    _dose_positive_check,
    "Every ``dosageInstruction.doseAndRate.doseQuantity.value`` is greater than zero.",
    # Validated, the repeating element is an array when there.
    lambda src: "r.get('dosageInstruction') is None",
)
