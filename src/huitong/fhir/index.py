"""The search index rows of a resource, for every R4 registry parameter of its type.

Search parameters — https://hl7.org/fhir/R4/searchparameter-registry.html ; how each
parameter type matches each data type — https://hl7.org/fhir/R4/search.html#ptypes. The row
shapes and value conventions are in :mod:`huitong.fhir.index_model`.

:func:`index_resource` is pure and never raises on odd content: a value of an unexpected
shape, or one that does not parse (a bad date), yields no row. Each resource type's
parameters are compiled once (:func:`huitong.fhir.fhirpath.compile_path`) and a parameter is
only evaluated when the resource has one of the top-level elements its expression reads.

Decisions the store and the search compiler rely on:

- ``_id`` and ``_lastUpdated`` are not indexed (they are ``resources`` columns); ``special``
  parameters and those without an expression (``_text``, ``_content``, ``_query``,
  ``_filter``) are skipped. ``_tag``, ``_profile``, ``_security``, ``_source`` are indexed for
  every type.
- A CodeableConcept gives one token row per coding (``text`` = the coding's display) plus,
  when it has ``text``, a row ``(None, None, text)``; an Identifier gives ``text`` from its
  ``type.text`` (or first type coding's display); a ContactPoint gives ``(None, value, None)``.
- Reference.identifier gives a token row named ``"<param>:identifier"``; a contained
  reference (``#x``) gives no reference row; ``urn:uuid:``/``urn:oid:`` and other
  unparseable references are kept in ``url`` only; absolute ``.../Type/id`` URLs under this
  server's base set ``target_type``/``target_id`` and keep the URL (without ``/_history/n``)
  in ``url``; absolute URLs of other servers keep the URL only.
- canonical values (reference params) keep only the URL before ``|version``; a uri
  parameter on a versioned canonical gets both forms.
- Numbers, quantities and Ranges may store ``-inf``/``inf`` bounds: an open Range end, or a
  quantity comparator (``<5`` has ``lo = -inf``).
- A Timing indexes each ``event`` and its ``repeat.boundsPeriod``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from huitong.fhir.dates import parse_date_range
from huitong.fhir.definitions import compartments, resource_types, search_parameters, structures
from huitong.fhir.fhirpath import Node, compile_path, is_subtype, parse_literal_reference
from huitong.fhir.index_model import DATE_MAX, DATE_MIN, IndexEntries, normalize_string

__all__ = ["index_resource"]

_Handler = Callable[[IndexEntries, str, int, Any], None]
_Evaluate = Callable[[list[Node], Node], list[Node]]

# Kept as columns of ``resources`` by the store, so never indexed.
_NOT_INDEXED = frozenset({"_id", "_lastUpdated"})
# Example SearchParameters from the spec's examples that the package ships beside the
# registry (a second Condition ``subject``, a second ``_id``); they are not registry entries.
_EXAMPLES_PREFIX = "http://hl7.org/fhir/SearchParameter/example"
# R4 technical correction: the DocumentReference ``relationship`` composite pairs its
# ``relatesto`` (reference) component with expression ``code`` and its ``relation`` (token)
# component with ``target``, the wrong way round; fixed in R4B/R5.
_COMPONENT_EXPRESSIONS = {
    "http://hl7.org/fhir/SearchParameter/DocumentReference-relationship": ("target", "code"),
}
_norm = lru_cache(maxsize=65536)(normalize_string)


def _text(value: Any) -> str | None:
    """``value`` normalised if it is a non-blank string."""
    if type(value) is str:
        return _norm(value) or None
    return None


def _str(value: Any) -> str | None:
    return value if type(value) is str and value else None


@lru_cache(maxsize=65536)
def _date(text: str) -> tuple[int, int] | None:
    try:
        return parse_date_range(text)
    except ValueError:
        return None


def _number(value: Any) -> tuple[float, float, float] | None:
    """``(value, lo, hi)`` with the implicit precision of the number as written
    (https://hl7.org/fhir/R4/search.html#number: ``100`` is [99.5, 100.5])."""
    if type(value) is int or type(value) is float:
        return _implicit_range(value)
    return None


@lru_cache(maxsize=65536, typed=True)  # one value is often indexed by several parameters
def _implicit_range(value: int | float) -> tuple[float, float, float] | None:
    if type(value) is int:
        if abs(value) > 2**1000:
            return None
        f = float(value)
        return f, f - 0.5, f + 0.5
    if type(value) is float and math.isfinite(value):
        written = repr(value)
        if "e" in written:
            mantissa, _, exponent = written.partition("e")
            decimals = len(mantissa.partition(".")[2]) - int(exponent)
        else:
            decimals = len(written.partition(".")[2])
        half = 0.5 * 10.0**-decimals
        # Rounded to the bound's own digits so 5.4 gives 5.35, not 5.3500000000000005.
        return value, round(value - half, decimals + 1), round(value + half, decimals + 1)
    return None  # inf/nan: not a JSON number


# --- string ----------------------------------------------------------------------------------


def _string_value(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is str:
        norm = _norm(value)
        if norm:
            e.string.append((name, grp, norm, value))


def _string_parts(*fields: str) -> _Handler:
    """HumanName / Address: a row per listed part (repeating parts give a row each)."""

    def add(e: IndexEntries, name: str, grp: int, value: Any) -> None:
        if type(value) is not dict:
            return
        for f in fields:
            part = value.get(f)
            if type(part) is list:
                for item in part:
                    _string_value(e, name, grp, item)
            else:
                _string_value(e, name, grp, part)

    return add


# --- token -----------------------------------------------------------------------------------


def _token_string(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is str and value:
        e.token.append((name, grp, None, value, None))


def _token_boolean(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is bool:
        e.token.append((name, grp, None, "true" if value else "false", None))


def _token_integer(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is int:
        e.token.append((name, grp, None, str(value), None))


def _token_coding(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is dict:
        system, code, display = value.get("system"), value.get("code"), value.get("display")
        system = system if type(system) is str and system else None
        code = code if type(code) is str and code else None
        text = (_norm(display) or None) if type(display) is str else None
        if system or code or text:
            e.token.append((name, grp, system, code, text))


def _token_codeable_concept(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is not dict:
        return
    start = len(e.token)
    codings = value.get("coding")
    if type(codings) is list:
        for coding in codings:
            _token_coding(e, name, grp, coding)
    text = value.get("text")
    if type(text) is str and (text := _norm(text)):
        # ``:text`` matches CodeableConcept.text as well as the displays; a row of its own
        # is only needed when no coding row already carries the same text.
        for row in e.token[start:]:
            if row[4] == text:
                return
        e.token.append((name, grp, None, None, text))


def _token_identifier(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is not dict:
        return
    system, code = _str(value.get("system")), _str(value.get("value"))
    if not (system or code):
        return
    text = None
    id_type = value.get("type")
    if type(id_type) is dict:
        text = _text(id_type.get("text"))
        codings = id_type.get("coding")
        if text is None and type(codings) is list and codings and type(codings[0]) is dict:
            text = _text(codings[0].get("display"))
    e.token.append((name, grp, system, code, text))


def _token_contact_point(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is dict:
        _token_string(e, name, grp, value.get("value"))


# --- reference -------------------------------------------------------------------------------


def _reference(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is not dict:
        return
    ref = value.get("reference")
    if type(ref) is str and ref and not ref.startswith("#"):
        parsed = parse_literal_reference(ref)
        if parsed is not None:
            e.reference.append((name, grp, *parsed))
        else:
            e.reference.append((name, grp, None, None, ref))
    identifier = value.get("identifier")
    if identifier is not None:
        _token_identifier(e, f"{name}:identifier", grp, identifier)


def _reference_canonical(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is str and value:
        url = value.split("|", 1)[0]
        if url:
            e.reference.append((name, grp, None, None, url))


def _reference_uri(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is str and value:
        e.reference.append((name, grp, None, None, value))


# --- date ------------------------------------------------------------------------------------


def _date_value(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is str:
        bounds = _date(value)
        if bounds is not None:
            e.date.append((name, grp, *bounds))


def _date_period(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is not dict:
        return
    start, end = value.get("start"), value.get("end")
    if start is None and end is None:
        return
    lo, hi = DATE_MIN, DATE_MAX
    if start is not None:
        bounds = _date(start) if type(start) is str else None
        if bounds is None:
            return  # a bound that does not parse must not turn into an open end
        lo = bounds[0]
    if end is not None:
        bounds = _date(end) if type(end) is str else None
        if bounds is None:
            return
        hi = bounds[1]
    e.date.append((name, grp, lo, hi))


def _date_timing(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is not dict:
        return
    events = value.get("event")
    if type(events) is list:
        for event in events:
            _date_value(e, name, grp, event)
    repeat = value.get("repeat")
    if type(repeat) is dict:
        _date_period(e, name, grp, repeat.get("boundsPeriod"))


# --- number and quantity ---------------------------------------------------------------------


def _number_value(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    parsed = _number(value)
    if parsed is not None:
        e.number.append((name, grp, *parsed))


def _number_quantity(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is dict:
        _number_value(e, name, grp, value.get("value"))


def _range_bounds(value: Any) -> tuple[dict[str, Any], float, float, float] | None:
    """A Range as ``(the Quantity giving its units, value, lo, hi)``, ends open when absent.

    ``value`` is the low end when there is one (what ``gt``/``lt`` compare), else the high.
    """
    if type(value) is not dict:
        return None
    low, high = value.get("low"), value.get("high")
    low_n = _number(low.get("value")) if type(low) is dict else None
    high_n = _number(high.get("value")) if type(high) is dict else None
    if low_n is not None and type(low) is dict:
        hi = high_n[2] if high_n is not None else math.inf
        return low, low_n[0], low_n[1], hi
    if high_n is not None and type(high) is dict:
        return high, high_n[0], -math.inf, high_n[2]
    return None


def _number_range(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    bounds = _range_bounds(value)
    if bounds is not None:
        e.number.append((name, grp, *bounds[1:]))


def _quantity(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is not dict:
        return
    parsed = _number(value.get("value"))
    if parsed is None:
        return
    number, lo, hi = parsed
    comparator = value.get("comparator")
    if comparator in ("<", "<="):
        lo = -math.inf
    elif comparator in (">", ">="):
        hi = math.inf
    unit = _str(value.get("unit"))
    code = _str(value.get("code")) or unit
    e.quantity.append((name, grp, _str(value.get("system")), code, unit, number, lo, hi))


def _quantity_money(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is dict:
        parsed = _number(value.get("value"))
        currency = _str(value.get("currency"))
        if parsed is not None:
            system = "urn:iso:std:iso:4217" if currency else None
            e.quantity.append((name, grp, system, currency, None, *parsed))


def _quantity_range(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    bounds = _range_bounds(value)
    if bounds is not None:
        units, number, lo, hi = bounds
        unit = _str(units.get("unit"))
        code = _str(units.get("code")) or unit
        e.quantity.append((name, grp, _str(units.get("system")), code, unit, number, lo, hi))


def _quantity_number(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    parsed = _number(value)
    if parsed is not None:
        e.quantity.append((name, grp, None, None, None, *parsed))


# --- uri -------------------------------------------------------------------------------------


def _uri_value(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is str and value:
        e.uri.append((name, grp, value))


def _uri_canonical(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    if type(value) is str and value:
        e.uri.append((name, grp, value))
        if "|" in value:
            e.uri.append((name, grp, value.split("|", 1)[0]))


# For each parameter type, the handler of each FHIR type; subtypes (code -> string, Age ->
# Quantity, canonical -> uri) find theirs through the type hierarchy.
_HANDLERS: dict[str, dict[str, _Handler]] = {
    "string": {
        "string": _string_value,
        "uri": _string_value,
        "HumanName": _string_parts("family", "given", "prefix", "suffix", "text"),
        "Address": _string_parts(
            "line", "city", "district", "state", "postalCode", "country", "text"
        ),
    },
    "token": {
        "string": _token_string,
        "uri": _token_string,
        "boolean": _token_boolean,
        "integer": _token_integer,
        "Coding": _token_coding,
        "CodeableConcept": _token_codeable_concept,
        "Identifier": _token_identifier,
        "ContactPoint": _token_contact_point,
    },
    "reference": {
        "Reference": _reference,
        "canonical": _reference_canonical,
        "uri": _reference_uri,
    },
    "date": {
        "date": _date_value,
        "dateTime": _date_value,
        "instant": _date_value,
        "Period": _date_period,
        "Timing": _date_timing,
    },
    "number": {
        "decimal": _number_value,
        "integer": _number_value,
        "Quantity": _number_quantity,
        "Range": _number_range,
    },
    "quantity": {
        "Quantity": _quantity,
        "Money": _quantity_money,
        "Range": _quantity_range,
        "decimal": _quantity_number,
        "integer": _quantity_number,
    },
    "uri": {"uri": _uri_value, "canonical": _uri_canonical, "string": _uri_value},
}
# When the FHIR type is unknown (a run-time-typed path), guess it from the JSON value.
_UNTYPED = {str: "string", bool: "boolean", int: "integer", float: "decimal"}
_UNTYPED_BY_KIND = {"date": {str: "dateTime"}, "reference": {str: "uri"}, "uri": {str: "uri"}}


def _skip(e: IndexEntries, name: str, grp: int, value: Any) -> None:
    """For FHIR types a parameter type has no rows for (an Attachment on a reference)."""


def _extension_handler(kind: str) -> _Handler:
    """An extension-based parameter indexes the extension's ``value[x]``."""

    def add(e: IndexEntries, name: str, grp: int, value: Any) -> None:
        if type(value) is dict:
            values = _extension_values()
            for key, item in value.items():
                if key in values:
                    _add(e, kind, name, grp, item, values[key])
                    return

    return add


# Handlers resolved through the type hierarchy, per parameter type; filled as types appear.
_RESOLVED: dict[str, dict[str, _Handler]] = {kind: {} for kind in _HANDLERS}


def _resolve(kind: str, type_name: str) -> _Handler:
    handler = _RESOLVED[kind].get(type_name)
    if handler is not None:
        return handler
    if type_name == "Extension":
        handler = _extension_handler(kind)
    else:
        handler = _skip
        table = _HANDLERS[kind]
        current: str | None = type_name
        for _ in range(16):  # bounded: the hierarchy is a few levels deep
            if current is None or "." in current:
                break
            if current in table:
                handler = table[current]
                break
            definition = structures().get(current)
            current = definition.get("base") if definition else None
    if type_name in structures():
        _RESOLVED[kind][type_name] = handler  # only known names: the cache stays bounded
    return handler


@cache
def _extension_values() -> dict[str, str]:
    """Extension ``value<Type>`` keys and their types."""
    types = structures()["Extension"]["elements"]["Extension.value[x]"][2]
    return {"value" + t[:1].upper() + t[1:]: t for t in types}


def _add(
    e: IndexEntries, kind: str, name: str, grp: int, value: Any, type_name: str | None
) -> None:
    """Index one node as ``kind`` under ``name``."""
    if type_name is None:
        type_name = _UNTYPED_BY_KIND.get(kind, _UNTYPED).get(type(value)) or _UNTYPED.get(
            type(value)
        )
        if type_name is None:
            return
    _resolve(kind, type_name)(e, name, grp, value)


# --- per-type plans --------------------------------------------------------------------------


@dataclass(slots=True)
class _Param:
    code: str
    kind: str
    evaluate: _Evaluate
    # composite only: (row name, type, expression) per component, and their compiled forms
    # per base-node type, filled on first use.
    components: tuple[tuple[str, str, str], ...] = ()
    compiled_components: dict[str | None, list[_Evaluate]] | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    by_key: dict[str, tuple[_Param, ...]]  # top-level element -> parameters that read it
    always: tuple[_Param, ...]  # parameters to evaluate whatever the resource holds
    compartment_params: frozenset[str]  # Patient compartment membership parameters
    # parameters to evaluate per tuple of top-level keys (see _select)
    selections: dict[tuple[str, ...], tuple[_Param, ...]] = field(default_factory=dict)


def _applies(bases: list[str], resource_type: str) -> bool:
    return any(b == resource_type or is_subtype(resource_type, b) for b in bases)


@cache
def _plan(resource_type: str) -> _Plan:
    """Compile every registry parameter of ``resource_type`` (once per type)."""
    by_key: dict[str, list[_Param]] = {}
    always: list[_Param] = []
    for definition in search_parameters():
        kind, expression, code = definition["type"], definition["expression"], definition["code"]
        if kind == "special" or not expression or code in _NOT_INDEXED:
            continue
        if definition["url"].startswith(_EXAMPLES_PREFIX):
            continue
        if not _applies(definition["base"], resource_type):
            continue
        compiled = compile_path(expression, resource_type)
        if compiled.never_matches:
            continue
        components: tuple[tuple[str, str, str], ...] = ()
        if kind == "composite":
            fixed = _COMPONENT_EXPRESSIONS.get(definition["url"])
            components = tuple(
                (f"{code}${i}", c["type"], fixed[i] if fixed else c["expression"])
                for i, c in enumerate(definition.get("component") or ())
            )
            if not components:
                continue
        param = _Param(code, kind, compiled.evaluate, components, {} if components else None)
        keys = compiled.root_keys
        if components and expression.strip() == resource_type:
            # The base is the resource itself (``Observation``): every component must have a
            # value, so the elements the last (value) component reads decide, as for others.
            keys = compile_path(components[-1][2], resource_type).root_keys
        if keys is None:
            always.append(param)
        else:
            for key in keys:
                by_key.setdefault(key, []).append(param)
    membership = compartments().get("Patient", {}).get(resource_type, [])
    return _Plan({k: tuple(v) for k, v in by_key.items()}, tuple(always), frozenset(membership))


def _index_composite(e: IndexEntries, param: _Param, nodes: list[Node], root: Node) -> None:
    """One ``grp`` per base node whose every component has a value
    (https://hl7.org/fhir/R4/search.html#composite)."""
    cache = param.compiled_components
    assert cache is not None
    components = param.components
    grp = 0
    for node in nodes:
        evaluators = cache.get(node[1])
        if evaluators is None:
            evaluators = [compile_path(expr, node[1]).evaluate for _, _, expr in components]
            cache[node[1]] = evaluators
        # The value component, last, is the one most often absent: try it first.
        values: list[list[Node]] = []
        for evaluate in reversed(evaluators):
            found = evaluate([node], root)
            if not found:
                break
            values.append(found)
        else:
            values.reverse()
            tables: tuple[list[Any], ...] = (
                e.string,
                e.token,
                e.reference,
                e.date,
                e.number,
                e.quantity,
                e.uri,
            )
            marks = [len(t) for t in tables]
            for (name, kind, _), found in zip(components, values, strict=True):
                table = getattr(e, kind)  # the tables are named after the types
                before = len(table)
                for value, type_name in found:
                    _add(e, kind, name, grp + 1, value, type_name)
                if len(table) == before:
                    # A component whose values give no row: this combination cannot match.
                    for t, mark in zip(tables, marks, strict=True):
                        del t[mark:]
                    break
            else:
                grp += 1


def _select(plan: _Plan, resource: dict[str, Any]) -> tuple[_Param, ...]:
    """The parameters worth evaluating on a resource with these top-level keys.

    Resources of one type from one source share a handful of key sets, so the answer is
    cached per key tuple (bounded: odd inputs only cost a recomputation).
    """
    keys = tuple(resource)
    selected = plan.selections.get(keys)
    if selected is None:
        chosen: dict[int, _Param] = {id(p): p for p in plan.always}
        for key in keys:
            for param in plan.by_key.get(key, ()):
                chosen.setdefault(id(param), param)
        selected = tuple(chosen.values())
        if len(plan.selections) >= 256:
            plan.selections.clear()
        plan.selections[keys] = selected
    return selected


def index_resource(resource: dict[str, Any], *, local_base: str | None = None) -> IndexEntries:
    """Compute the search index rows of ``resource`` and its Patient compartments.

    An absolute reference is this server's own resource only when it starts with
    ``local_base`` (this server's FHIR base URL); any other ``https://host/fhir/Patient/1``
    names a resource on another server and is indexed by its URL alone. Treating it as the
    local ``Patient/1`` would put a stranger's data in that patient's compartment and search
    results, so without a ``local_base`` every absolute reference counts as remote.

    Every R4 registry parameter whose base is the resource's type (or Resource /
    DomainResource) is evaluated; see the module docstring for what is skipped. ``patients``
    lists the Patient ids referenced through the Patient CompartmentDefinition's parameters
    for this type (https://hl7.org/fhir/R4/compartmentdefinition-patient.html); a Patient's
    own id comes first. A resource without a known ``resourceType`` gets no rows.
    """
    entries = IndexEntries()
    resource_type = resource.get("resourceType") if type(resource) is dict else None
    if type(resource_type) is not str or resource_type not in resource_types():
        return entries
    plan = _plan(resource_type)
    root: Node = (resource, resource_type)
    focus = [root]
    for param in _select(plan, resource):
        nodes = param.evaluate(focus, root)
        if not nodes:
            continue
        if param.compiled_components is not None:
            _index_composite(entries, param, nodes, root)
            continue
        kind, code = param.kind, param.code
        handlers = _RESOLVED[kind]
        for value, type_name in nodes:
            handler = handlers.get(type_name)  # type: ignore[arg-type]
            if handler is not None:
                handler(entries, code, 0, value)
            else:
                _add(entries, kind, code, 0, value, type_name)
    if entries.reference:
        _externalise(entries, local_base.rstrip("/") + "/" if local_base else None)
    _dedupe(entries)
    entries.patients = _patients(resource, resource_type, plan, entries)
    return entries


def _externalise(e: IndexEntries, local_prefix: str | None) -> None:
    """Absolute references to other servers keep only their URL (see index_resource)."""
    rows = e.reference
    for i, (param, grp, _target_type, target_id, url) in enumerate(rows):
        if url is not None and target_id is not None and not (
            local_prefix is not None and url.startswith(local_prefix)
        ):
            rows[i] = (param, grp, None, None, url)


def _dedupe(e: IndexEntries) -> None:
    if len(e.string) > 1:
        e.string = list(dict.fromkeys(e.string))
    if len(e.token) > 1:
        e.token = list(dict.fromkeys(e.token))
    if len(e.reference) > 1:
        e.reference = list(dict.fromkeys(e.reference))
    if len(e.date) > 1:
        e.date = list(dict.fromkeys(e.date))
    if len(e.number) > 1:
        e.number = list(dict.fromkeys(e.number))
    if len(e.quantity) > 1:
        e.quantity = list(dict.fromkeys(e.quantity))
    if len(e.uri) > 1:
        e.uri = list(dict.fromkeys(e.uri))


def _patients(
    resource: dict[str, Any], resource_type: str, plan: _Plan, e: IndexEntries
) -> list[str]:
    patients: dict[str, None] = {}
    if resource_type == "Patient":
        own = resource.get("id")
        if type(own) is str and own:
            patients[own] = None
    members = plan.compartment_params
    if members:
        for param, _grp, target_type, target_id, _url in e.reference:
            if target_type == "Patient" and param in members and target_id:
                patients[target_id] = None
    return list(patients)
