"""Parse a FHIR search query into a :class:`SearchQuery` — https://hl7.org/fhir/R4/search.html.

:func:`parse_search` reads the ``(name, value)`` pairs of a search (already URL-decoded),
checks every parameter against the registry (:mod:`huitong.fhir.search.params`) and returns
the parsed model; it runs no SQL. Failure contract: a malformed or unsupported search raises
``FhirError(Category.INVALID)`` naming the parameter (HTTP 400). With ``lenient=True``
(``Prefer: handling=lenient``) unknown and unsupported *parameters* are recorded in
``SearchQuery.ignored`` instead; malformed values and modifiers are errors either way,
since ignoring them would silently widen the result.

Paging: the page offset travels in :data:`PAGING_PARAM` (``_offset``), an integer ≥ 0; the
server writes it into the ``next``/``previous`` links. ``SearchQuery.applied`` lists every
applied parameter (in request order, values as received, ``_count`` as clamped) *except*
``_offset``, so a link is ``applied + [("_offset", n)]``. ``_format`` and ``_pretty`` are
HTTP concerns and are neither applied nor ignored here.

Value conventions of the model (:mod:`huitong.fhir.search.model`): ``Value.text`` is the
value with its prefix removed and ``\\,`` ``\\|`` ``\\$`` ``\\\\`` unescaped. Where a value
has ``|``-separated parts — tokens (``system|code``, ``:of-type`` ``system|code|value``),
quantities (``number|system|code``), canonical references (``url|version``) — ``parts``
holds them (each unescaped) so an escaped ``\\|`` inside a part stays unambiguous; a value
without ``|`` has no parts. Composite values hold one part per ``$``-separated component,
each parsed as its component type.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Literal, cast

from huitong.fhir.dates import parse_date_range
from huitong.fhir.definitions import compartments, resource_types
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.model import (
    Chain,
    Clause,
    Has,
    Include,
    Prefix,
    SearchQuery,
    SortKey,
    Value,
)
from huitong.fhir.search.params import SearchParamDef, param_for

__all__ = ["PAGING_PARAM", "parse_search"]

PAGING_PARAM = "_offset"

_PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})
_ORDERED_TYPES = frozenset({"number", "date", "quantity"})
_HTTP_ONLY = frozenset({"_format", "_pretty"})
_UNSUPPORTED_RESULT = frozenset({"_containedType", "_graph", "_score"})
_SUMMARY = frozenset({"true", "text", "data", "count", "false"})
_TOTAL = frozenset({"none", "estimate", "accurate"})
_SORTABLE = frozenset({"string", "token", "reference", "date", "number", "quantity", "uri"})
# modifiers each type accepts (https://hl7.org/fhir/R4/search.html#modifiers); reference
# parameters also accept a resource type
_MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"missing", "exact", "contains"}),
    "token": frozenset({"missing", "text", "not", "of-type"}),
    "reference": frozenset({"missing", "identifier"}),
    "date": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "quantity": frozenset({"missing"}),
    "uri": frozenset({"missing", "above", "below"}),
    "composite": frozenset({"missing"}),
    "special": frozenset(),
}
_MAX_CHAIN = 4
_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_ELEMENT_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\[x\])?")


class _Unknown(Exception):
    """A parameter we do not know or support: an error, or ignored when lenient."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _invalid(message: str, name: str) -> FhirError:
    return FhirError(Category.INVALID, message, expression=name)


# -- value text ---------------------------------------------------------------


def _split(raw: str, sep: str) -> list[str]:
    """Split on ``sep`` not preceded by a backslash; escapes are kept for the caller."""
    if "\\" not in raw:
        return raw.split(sep)  # no escapes (nearly every value): str.split is the same
    out: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            current.append(raw[i : i + 2])
            i += 2
            continue
        if ch == sep:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    out.append("".join(current))
    return out


def _unescape(raw: str) -> str:
    return re.sub(r"\\([,|$\\])", r"\1", raw)


def _check_number(text: str, name: str) -> None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _invalid(f"Invalid number '{text}' for parameter '{name}'", name) from None
    if not number.is_finite() or not math.isfinite(float(number)):
        raise _invalid(f"Invalid number '{text}' for parameter '{name}'", name)


def _take_prefix(raw: str, ptype: str) -> tuple[Prefix, str]:
    if ptype in _ORDERED_TYPES and len(raw) > 2 and raw[:2] in _PREFIXES:
        head = raw[2]
        # a prefix is two letters followed by the value proper (a digit, sign or dot)
        if head.isdigit() or head in "+-.":
            return cast(Prefix, raw[:2]), raw[2:]
    return "eq", raw


def _pipe_parts(raw: str) -> tuple[Value, ...]:
    pieces = _split(raw, "|")
    if len(pieces) == 1:
        return ()
    return tuple(Value(_unescape(p)) for p in pieces)


def _value(raw: str, ptype: str, name: str, modifier: str | None) -> Value:
    """One value (one item of the comma list) of a parameter of type ``ptype``."""
    prefix, rest = _take_prefix(raw, ptype)
    text = _unescape(rest)
    if ptype == "date":
        try:
            parse_date_range(text)  # the compiler widens it again; here it is checked
        except ValueError as exc:
            raise _invalid(f"Invalid date '{raw}' for parameter '{name}': {exc}", name) from None
        return Value(text, prefix)
    if ptype == "number":
        _check_number(text, name)
        return Value(text, prefix)
    if ptype == "quantity":
        parts = _pipe_parts(rest)
        if parts and len(parts) != 3:
            raise _invalid(
                f"Invalid quantity '{raw}' for parameter '{name}': "
                "expected number, number|system|code or number||code",
                name,
            )
        _check_number(parts[0].text if parts else text, name)
        return Value(text, prefix, parts)
    if ptype == "token":
        parts = _pipe_parts(rest)
        if modifier == "of-type":
            if len(parts) != 3 or not parts[1].text or not parts[2].text:
                raise _invalid(
                    f"Invalid value '{raw}' for '{name}': :of-type needs system|code|value",
                    name,
                )
        elif len(parts) > 2:
            raise _invalid(f"Invalid token '{raw}' for parameter '{name}': more than one '|'", name)
        return Value(text, "eq", parts)
    if ptype == "reference":
        if ":" in text:  # absolute URL, urn: or canonical url|version
            return Value(text, "eq", _pipe_parts(rest))
        pieces = text.split("/")  # id, Type/id or Type/id/_history/version
        typed = len(pieces) == 2 or (len(pieces) == 4 and pieces[2] == "_history")
        if all(pieces) and (len(pieces) == 1 or (typed and pieces[0] in resource_types())):
            return Value(text)
        raise _invalid(
            f"Invalid reference '{raw}' for parameter '{name}': expected [id], [type]/[id] "
            "or an absolute URL",
            name,
        )
    return Value(text)


def _values(
    raw: str, definition: SearchParamDef, name: str, modifier: str | None
) -> tuple[Value, ...]:
    items = _split(raw, ",")
    if any(item == "" for item in items):
        raise _invalid(f"Empty value in the list '{raw}' for parameter '{name}'", name)
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise _invalid(f"Parameter '{name}' needs the value true or false", name)
        return (Value(raw),)
    if modifier == "identifier":
        return tuple(_value(item, "token", name, None) for item in items)
    if modifier in ("text", "contains", "exact", "above", "below"):
        return tuple(Value(_unescape(item)) for item in items)
    if definition.type == "composite":
        return tuple(_composite_value(item, definition, name) for item in items)
    ptype = definition.type if definition.code != "_list" else "string"
    return tuple(_value(item, ptype, name, modifier) for item in items)


def _composite_value(raw: str, definition: SearchParamDef, name: str) -> Value:
    pieces = _split(raw, "$")
    if len(pieces) != len(definition.components):
        raise _invalid(
            f"Invalid value '{raw}' for composite parameter '{name}': expected "
            f"{len(definition.components)} components separated by '$'",
            name,
        )
    parts = []
    for piece, component in zip(pieces, definition.components, strict=True):
        if piece == "":
            raise _invalid(f"Empty component in '{raw}' for parameter '{name}'", name)
        parts.append(_value(piece, component.type, name, None))
    return Value(_unescape(raw), "eq", tuple(parts))


# -- parameters ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Resolved:
    definition: SearchParamDef
    types: tuple[str, ...]  # the types (of those asked for) that define the parameter
    targets: tuple[str, ...]  # for references: the union of targets; () = any type


def _resolve(code: str, types: tuple[str, ...], name: str, *, narrow: bool) -> _Resolved:
    """The definition of ``code`` across ``types`` (``()`` = system level).

    With several types the parameter must mean the same on each: all types (or, for a
    chain, ``narrow``: the types that define it) must give it the same search type.
    """
    if not types:
        found = param_for(None, code)
        if found is None:
            raise _Unknown(f"Unknown search parameter '{name}' for a system-wide search")
        return _Resolved(found, (), found.targets)
    defs = {t: param_for(t, code) for t in types}
    present = {t: d for t, d in defs.items() if d is not None}
    where = types[0] if len(types) == 1 else "/".join(types)
    if not present or (not narrow and len(present) != len(defs)):
        raise _Unknown(f"Unknown search parameter '{name}' for resource type {where}")
    kinds = {(d.type, tuple(c.type for c in d.components)) for d in present.values()}
    if len(kinds) > 1:
        raise _invalid(
            f"Search parameter '{name}' is ambiguous: it has different types on {where}",
            name,
        )
    first = next(iter(present.values()))
    targets: tuple[str, ...] = ()
    if first.type == "reference" and all(d.targets for d in present.values()):
        targets = tuple(sorted({t for d in present.values() for t in d.targets}))
    return _Resolved(first, tuple(present), targets)


def _clause(
    name: str, raw: str, types: tuple[str, ...], depth: int = 0, full: str | None = None
) -> Clause:
    """A clause for parameter ``name`` (with modifier and chain) on ``types``; ``full`` is
    the whole parameter name when ``name`` is the rest of a chain."""
    full = full or name
    if depth > _MAX_CHAIN:
        raise _invalid(f"Parameter '{full}' chains more than {_MAX_CHAIN} levels", full)
    if name.startswith("_has:") or name == "_has":
        return _has_clause(name, raw, types, depth, full)
    head, dot, rest = name.partition(".")
    code, colon, modifier_text = head.partition(":")
    modifier = modifier_text if colon else None
    if colon and not modifier:
        raise _invalid(f"Empty modifier in parameter '{name}'", name)
    resolved = _resolve(code, types, name, narrow=depth > 0)
    definition = resolved.definition
    if not definition.supported:
        raise _Unknown(f"Search parameter '{code}' (type {definition.type}) is not supported")
    type_modifier = modifier if modifier in resource_types() else None
    if definition.type == "reference" and type_modifier is not None:
        if resolved.targets and type_modifier not in resolved.targets:
            raise _invalid(
                f"Resource type '{type_modifier}' is not a target of reference parameter "
                f"'{code}' (targets: {', '.join(resolved.targets)})",
                name,
            )
    elif modifier is not None:
        _check_modifier(definition, modifier, name)
    if dot:
        return _chain_clause(name, raw, resolved, type_modifier, rest, modifier, depth, full)
    values = _values(raw, definition, name, modifier)
    return Clause(
        param=code,
        type=definition.type,
        values=values,
        modifier=modifier,
        resource_types=resolved.types,
        components=tuple(c.type for c in definition.components),
    )


def _check_modifier(definition: SearchParamDef, modifier: str, name: str) -> None:
    allowed = _MODIFIERS.get(definition.type, frozenset())
    if definition.code in ("_id", "_list"):
        allowed = frozenset({"not"} if definition.code == "_id" else ())
    if modifier not in allowed:
        raise _invalid(
            f"Modifier ':{modifier}' is not supported for parameter '{definition.code}' "
            f"of type {definition.type}",
            name,
        )
    if modifier == "of-type" and "identifier" not in (definition.expression or "").lower():
        raise _invalid(
            f"Modifier ':of-type' applies only to Identifier parameters, not '{definition.code}'",
            name,
        )


def _chain_clause(
    name: str,
    raw: str,
    resolved: _Resolved,
    type_modifier: str | None,
    rest: str,
    modifier: str | None,
    depth: int,
    full: str,
) -> Clause:
    definition = resolved.definition
    if definition.type != "reference":
        raise _invalid(
            f"Cannot chain on '{definition.code}': only reference parameters can be chained",
            name,
        )
    if modifier is not None and type_modifier is None:
        raise _invalid(f"Modifier ':{modifier}' cannot be used in a chain ('{name}')", name)
    if not rest:
        raise _invalid(f"Empty chained parameter in '{name}'", name)
    if type_modifier is not None:
        targets: tuple[str, ...] = (type_modifier,)
    elif resolved.targets:
        targets = resolved.targets
    else:
        raise _invalid(
            f"Chained parameter '{name}' needs a target type ('{definition.code}:[type].…'): "
            f"'{definition.code}' may refer to any resource type",
            name,
        )
    inner = _clause(rest, raw, targets, depth + 1, full)
    return Clause(
        param=definition.code,
        type="reference",
        values=(),
        resource_types=resolved.types,
        chain=Chain(inner.resource_types, inner),
    )


def _has_clause(name: str, raw: str, types: tuple[str, ...], depth: int, full: str) -> Clause:
    pieces = name.split(":", 3)
    if len(pieces) != 4 or not all(pieces[1:]):
        raise _invalid(
            f"Invalid reverse chain '{name}': expected _has:[type]:[reference]:[parameter]",
            name,
        )
    _, source, ref_code, rest = pieces
    if not types:
        raise _invalid(f"'{name}' needs a resource type: _has is not a system-wide search", name)
    if source not in resource_types():
        raise _invalid(f"Unknown resource type '{source}' in '{name}'", name)
    ref = param_for(source, ref_code)
    if ref is None or ref.type != "reference":
        raise _invalid(f"'{ref_code}' is not a reference parameter of {source} (in '{name}')", name)
    reachable = tuple(t for t in types if not ref.targets or t in ref.targets)
    if not reachable:
        raise _invalid(f"{source}.{ref_code} cannot refer to {'/'.join(types)} (in '{name}')", name)
    inner = _clause(rest, raw, (source,), depth + 1, full)
    return Clause(
        param="_has",
        type="reference",
        values=(),
        resource_types=reachable,
        has=Has(source, ref_code, inner),
    )


# -- result parameters --------------------------------------------------------


def _int(raw: str, name: str) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise _invalid(
            f"Parameter '{name}' needs a whole number from 0 to 999999999, not '{raw}'", name
        )
    return int(raw)


def _include(raw: str, name: str, reverse: bool) -> Include:
    iterate = name.endswith((":iterate", ":recurse"))
    base_name = name.split(":", 1)[0]
    if name not in (base_name, f"{base_name}:iterate", f"{base_name}:recurse"):
        raise _invalid(f"Unknown modifier in '{name}': only :iterate is allowed", name)
    if raw == "*":
        return Include("*", "*", None, iterate)
    pieces = raw.split(":")
    if len(pieces) not in (2, 3) or not all(pieces):
        raise _invalid(
            f"Invalid {base_name} '{raw}': expected [type]:[parameter] or "
            "[type]:[parameter]:[target type]",
            name,
        )
    source, code = pieces[0], pieces[1]
    target = pieces[2] if len(pieces) == 3 else None
    for t in (source, target):
        if t is not None and t not in resource_types():
            raise _invalid(f"Unknown resource type '{t}' in {base_name}={raw}", name)
    if code != "*":
        ref = param_for(source, code)
        if ref is None or ref.type != "reference":
            raise _invalid(
                f"'{code}' is not a reference parameter of {source} (in {base_name}={raw})",
                name,
            )
        if target is not None and ref.targets and target not in ref.targets:
            raise _invalid(
                f"'{target}' is not a target of {source}:{code} (in {base_name}={raw})", name
            )
    return Include(source, code, target, iterate)


def _sort(raw: str, types: tuple[str, ...], name: str) -> list[SortKey]:
    keys: list[SortKey] = []
    for item in raw.split(","):
        descending = item.startswith("-")
        code = item[1:] if descending else item
        if not code:
            raise _invalid(f"Empty sort key in _sort={raw}", name)
        try:
            resolved = _resolve(code, types, f"_sort={code}", narrow=False)
        except _Unknown as exc:
            raise _invalid(f"Cannot sort on '{code}': {exc.message}", name) from None
        ptype = resolved.definition.type
        if ptype not in _SORTABLE or not resolved.definition.supported:
            raise _invalid(
                f"Cannot sort on '{code}': parameters of type {ptype} are not sortable", name
            )
        keys.append(SortKey(code, ptype, descending))
    return keys


def _elements(raw: str, name: str) -> list[str]:
    items = [item.strip() for item in raw.split(",")]
    for item in items:
        if not _ELEMENT_RE.fullmatch(item):
            raise _invalid(f"Invalid element name '{item}' in _elements", name)
    return items


# -- the query ----------------------------------------------------------------


def _search_types(
    resource_type: str | None, compartment: tuple[str, str] | None
) -> tuple[str, ...]:
    if resource_type is not None and resource_type not in resource_types():
        raise FhirError(Category.INVALID, f"Unknown resource type '{resource_type}'")
    if compartment is None:
        return (resource_type,) if resource_type else ()
    ctype, cid = compartment
    members = compartments().get(ctype)
    if members is None:
        raise FhirError(Category.INVALID, f"'{ctype}' is not a compartment type")
    if not _ID_RE.fullmatch(cid):
        raise FhirError(Category.INVALID, f"Invalid compartment id '{cid}'")
    in_compartment = sorted({t for t, codes in members.items() if codes} | {ctype})
    if resource_type is None:
        return tuple(in_compartment)
    if resource_type not in in_compartment:
        raise FhirError(
            Category.INVALID, f"Resource type {resource_type} is not in the {ctype} compartment"
        )
    return (resource_type,)


def parse_search(
    resource_type: str | None,
    params: Sequence[tuple[str, str]],
    *,
    lenient: bool = False,
    compartment: tuple[str, str] | None = None,
    default_count: int = 20,
    max_count: int = 1000,
    base_url: str | None = None,
) -> SearchQuery:
    """Parse a search on ``resource_type`` (None: system-wide) — https://hl7.org/fhir/R4/search.html.

    ``params`` are the decoded query pairs in request order; a repeated parameter ANDs, a
    comma list ORs. ``compartment=("Patient", "123")`` makes a compartment search
    (``Patient/123/Observation``; ``resource_type=None`` for ``Patient/123/*``).
    ``base_url`` (this server's base, e.g. ``https://hie.example/fhir``) turns absolute
    reference values on this server into ``Type/id``. ``_count`` above ``max_count`` is
    clamped. Raises ``FhirError(INVALID)`` for anything malformed or unsupported (see the
    module docstring for ``lenient``).
    """
    types = _search_types(resource_type, compartment)
    query = SearchQuery(resource_types=types, count=default_count, compartment=compartment)
    # the types clauses and _sort resolve against; () = the Resource-level parameters only
    # (system-wide search without _type, and Patient/x/*)
    clause_types = types if resource_type is not None else ()
    for name, raw in params:
        if name == "_type" and raw:
            if resource_type is not None or compartment is not None:
                raise _invalid("_type is only allowed in a system-wide search", name)
            wanted = set(raw.split(","))
            unknown = sorted(t for t in wanted if t not in resource_types())
            if unknown:
                raise _invalid(f"Unknown resource type '{unknown[0]}' in _type", name)
            narrowed = set(query.resource_types) & wanted if query.resource_types else wanted
            query.resource_types = clause_types = tuple(sorted(narrowed))
    seen_once: set[str] = set()

    for name, raw in params:
        base_name = name.split(":", 1)[0]
        if base_name in _HTTP_ONLY:
            continue
        if raw == "" and base_name not in ("_sort", "_elements"):
            continue  # https://hl7.org/fhir/R4/search.html#errors: empty parameters are ignored
        applied_value = raw
        if base_name in ("_count", PAGING_PARAM, "_total", "_summary", "_sort", "_elements"):
            if name != base_name:
                raise _invalid(f"Parameter '{base_name}' takes no modifier ('{name}')", name)
            if base_name in seen_once:
                raise _invalid(f"Parameter '{base_name}' may appear only once", name)
            seen_once.add(base_name)
        if base_name == "_count":
            query.count = min(_int(raw, name), max_count)
            applied_value = str(query.count)
        elif base_name == PAGING_PARAM:
            query.offset = _int(raw, name)
            continue
        elif base_name == "_total":
            if raw not in _TOTAL:
                raise _invalid(f"_total must be none, estimate or accurate, not '{raw}'", name)
            query.total = cast(Literal["none", "estimate", "accurate"], raw)
        elif base_name == "_summary":
            if raw not in _SUMMARY:
                raise _invalid(
                    f"_summary must be true, text, data, count or false, not '{raw}'", name
                )
            query.summary = raw
        elif base_name == "_elements":
            query.elements = _elements(raw, name) if raw else []
        elif base_name == "_sort":
            if not raw:
                continue
            query.sort = _sort(raw, clause_types, name)
        elif base_name in ("_include", "_revinclude"):
            include = _include(raw, name, base_name == "_revinclude")
            (query.revinclude if base_name == "_revinclude" else query.include).append(include)
        elif base_name == "_type":
            pass  # applied in the first pass
        elif base_name == "_contained":
            if raw != "false":
                if not lenient:
                    raise _invalid("_contained is not supported (only _contained=false)", name)
                query.ignored.append(name)
                continue
        elif base_name in _UNSUPPORTED_RESULT:
            if not lenient:
                raise _invalid(f"Parameter '{base_name}' is not supported", name)
            query.ignored.append(name)
            continue
        else:
            try:
                clause = _clause(name, raw, clause_types)
            except _Unknown as exc:
                if not lenient:
                    raise _invalid(exc.message, name) from None
                query.ignored.append(name)
                continue
            if base_url is not None:
                clause = _localise(clause, base_url.rstrip("/"))
            query.clauses.append(clause)
        query.applied.append((name, applied_value))
    return query


def _localise(clause: Clause, base: str) -> Clause:
    """Absolute references to this server (``{base}/Patient/1``) become ``Patient/1``."""
    if clause.chain is not None or clause.has is not None:
        inner = clause.chain.clause if clause.chain else clause.has.clause  # type: ignore[union-attr]
        local = _localise(inner, base)
        if clause.chain is not None:
            return _replace(clause, chain=Chain(clause.chain.target_types, local))
        has = clause.has
        assert has is not None
        return _replace(clause, has=Has(has.source_type, has.reference_param, local))
    if clause.type != "reference" or clause.modifier in ("missing", "identifier"):
        return clause
    prefix = base + "/"
    values = tuple(
        Value(v.text[len(prefix) :]) if v.text.startswith(prefix) else v for v in clause.values
    )
    return _replace(clause, values=values)


def _replace(clause: Clause, **changes: object) -> Clause:
    return replace(clause, **changes)  # type: ignore[arg-type]
