"""Structural validation of FHIR R4 resources in their JSON form, before they are stored.

The rules come from the official definitions (:mod:`huitong.fhir.definitions`) and the JSON
format (https://hl7.org/fhir/R4/json.html):

* every property is an element of its type, or the ``_name`` sibling of a primitive one
  carrying its ``id``/``extension`` (for repeating primitives a parallel array with ``null``
  gaps); choice elements (https://hl7.org/fhir/R4/formats.html#choice) appear as one allowed
  ``valueQuantity``-style variant; ``contentReference`` re-uses another element's structure;
* objects for complex types, arrays exactly when the maximum cardinality is above one, never
  ``null``, an empty string, an empty object or an empty array;
* primitives as the JSON type the format prescribes, integers 32-bit, strings matching the
  value regexes of https://hl7.org/fhir/R4/datatypes.html, dates real calendar dates;
* required elements (``min`` >= 1) present;
* ``resourceType`` on every resource, including those nested in ``contained`` (which must not
  contain resources themselves), ``Bundle.entry.resource`` and ``Parameters``;
* literal references (https://hl7.org/fhir/R4/references.html#literal) of the form
  ``Type/id[/_history/vid]``, an absolute URL, ``urn:uuid:``/``urn:oid:``, ``#id`` or a
  conditional ``Type?query`` (resolved by transactions: https://hl7.org/fhir/R4/http.html#trules);
  a relative ``Type`` must be a resource type the element allows.

Deliberately **not** checked: invariants (FHIRPath constraints such as ``ele-1``, ``dom-3``,
``ext-1``), terminology bindings, profiles named in ``meta.profile``, whether references
resolve, the XHTML inside ``Narrative.div`` beyond being a string that starts with ``<div``,
and string length limits. Those belong to later, costlier stages.

Every write passes through here, so each type is compiled once, on first use, into plans that
map JSON property names straight to their checks, and an issue's FHIRPath expression is only
rendered when the issue is reported.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from huitong.fhir.definitions import resource_types, structures
from huitong.fhir.errors import Category, FhirError, Issue

__all__ = ["MAX_ISSUES", "validate_resource", "validate_resource_type_name"]

MAX_ISSUES = 100
"""At most this many issues are reported for one resource, then a note that there were more."""

_MAX_DEPTH = 128  # nested objects: far beyond real data, well inside Python's recursion limit

# Check kinds, one per JSON representation.
_STR, _DATE, _BOOL, _INT, _DEC, _XHTML, _REF, _OBJ, _RES, _CONTAINED, _SIBLING, _SKIP = range(12)
_PRIMITIVE_KINDS = frozenset({_STR, _DATE, _BOOL, _INT, _DEC, _XHTML, _REF})

# A spec: (kind, repeats, argument, choice group or None, element name, FHIR type code).
_Spec = tuple[int, bool, Any, str | None, str, str]
# A path node: (parent node, element name, index or None); rendered only for an issue.
_Node = tuple[Any, str, int | None] | None

# https://hl7.org/fhir/R4/datatypes.html#integer: 32-bit signed.
_INT_RANGES = {
    "integer": (-(2**31), 2**31 - 1),
    "unsignedInt": (0, 2**31 - 1),
    "positiveInt": (1, 2**31 - 1),
}
# The official base64Binary regex, (\s*([0-9a-zA-Z\+/=]){4}\s*)+, backtracks exponentially in
# Python's engine on a failing input ("AAAA  " * 16 + "!" takes seconds), so it is replaced by
# this equivalent that cannot split a whitespace run two ways.
_LINEAR_EQUIVALENTS = {
    r"(\s*([0-9a-zA-Z\+/=]){4}\s*)+": r"\s*(?:[0-9a-zA-Z+/=]{4}\s*)+",
}
_JSON_TYPES: dict[int, tuple[Any, str]] = {
    _BOOL: (bool, "true or false"),
    _INT: (int, "an integer"),
    _DEC: ((int, float), "a number"),
}
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _compile(regex: str) -> Callable[[str], Any]:
    # ASCII: the regexes are written for Java, where \s means ASCII whitespace only, so that
    # e.g. U+3000 (the ideographic space) is an ordinary character inside a FHIR string.
    return re.compile(_LINEAR_EQUIVALENTS.get(regex, regex), re.ASCII).fullmatch


class _Plan:
    """What one JSON object of one structure may hold."""

    __slots__ = ("choices", "props", "required", "type_name")

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        self.props: dict[str, _Spec] = {}
        # (JSON names any one of which satisfies the element, element name)
        self.required: tuple[tuple[tuple[str, ...], str], ...] = ()
        self.choices: dict[str, tuple[str, ...]] = {}  # choice base name -> allowed type codes


class _Full(Exception):
    """Raised internally once MAX_ISSUES issues have been collected."""


# --- compiling plans --------------------------------------------------------------------------


class _Compiler:
    """Turns the generated element tables into a graph of :class:`_Plan` (cycles allowed)."""

    def __init__(self) -> None:
        self.structures = structures()
        self.plans: dict[str, _Plan] = {}  # by element path, and by Reference target set
        self.children: dict[str, dict[str, list[tuple[str, list[Any]]]]] = {}
        self.regex = {
            name: _compile(s["regex"])
            for name, s in self.structures.items()
            if s["kind"] == "primitive-type" and s.get("regex")
        }
        # What a ``_name`` sibling holds: the primitive's Element.id and extensions.
        self.primitive_element = _Plan("Element")
        self.primitive_element.props = {
            "id": (_STR, False, self.regex["string"], None, "id", "string"),
            "extension": (_OBJ, True, self.type_plan("Extension"), None, "extension", "Extension"),
        }

    def _children(self, structure: str, path: str) -> list[tuple[str, list[Any]]]:
        index = self.children.get(structure)
        if index is None:
            index = self.children[structure] = {}
            for element_path, element in self.structures[structure]["elements"].items():
                parent, _, name = element_path.rpartition(".")
                if parent:
                    index.setdefault(parent, []).append((name, element))
        return index.get(path, [])

    def type_plan(self, name: str) -> _Plan:
        return self.element_plan(name, name)

    def element_plan(self, structure: str, path: str) -> _Plan:
        """The plan for the children of ``path`` (a type's root or a backbone element)."""
        plan = self.plans.get(path)
        if plan is not None:
            return plan
        plan = self.plans[path] = _Plan(structure)  # registered first: structures recurse
        is_resource_root = path == structure and self.structures[structure]["kind"] == "resource"
        required = []
        for name, (min_, max_, types, content_ref, targets, *_) in self._children(
            structure, path
        ):
            if max_ == "0":
                continue
            repeats = max_ != "1"
            if content_ref is not None:
                ref_path = content_ref.lstrip("#")
                child = self.element_plan(ref_path.split(".", 1)[0], ref_path)
                names = self._add(plan, name, (_OBJ, repeats, child, None, name, "BackboneElement"))
            elif name.endswith("[x]"):
                base = name[:-3]
                plan.choices[base] = tuple(types)
                names = []
                for code in types:
                    variant = base + code[0].upper() + code[1:]
                    spec = self._spec(structure, f"{path}.{name}", variant, code, repeats, targets)
                    names += self._add(plan, variant, spec, base)
            else:
                # Resource.id is a FHIRPath System.String that the specification types ``id``.
                code = "id" if is_resource_root and name == "id" else types[0]
                spec = self._spec(structure, f"{path}.{name}", name, code, repeats, targets)
                names = self._add(plan, name, spec)
            if min_ > 0:
                required.append((tuple(names), name))
        if is_resource_root:
            plan.props["resourceType"] = (_SKIP, False, None, None, "resourceType", "code")
        plan.required = tuple(required)
        return plan

    def _spec(
        self, structure: str, path: str, name: str, code: str, repeats: bool, targets: Any
    ) -> _Spec:
        if code in ("BackboneElement", "Element"):
            return (_OBJ, repeats, self.element_plan(structure, path), None, name, code)
        if code == "Resource":
            kind = _CONTAINED if name == "contained" else _RES
            return (kind, repeats, None, None, name, code)
        if code == "Reference":
            return (_OBJ, repeats, self.reference_plan(targets), None, name, code)
        if self.structures[code]["kind"] != "primitive-type":
            return (_OBJ, repeats, self.type_plan(code), None, name, code)
        if code == "boolean":
            return (_BOOL, repeats, None, None, name, code)
        if code in _INT_RANGES:
            return (_INT, repeats, _INT_RANGES[code], None, name, code)
        if code == "decimal":
            return (_DEC, repeats, None, None, name, code)
        if code == "xhtml":
            return (_XHTML, repeats, None, None, name, code)
        kind = _DATE if code in ("date", "dateTime", "instant") else _STR
        return (kind, repeats, self.regex[code], None, name, code)

    def _add(self, plan: _Plan, name: str, spec: _Spec, group: str | None = None) -> list[str]:
        """Add ``spec`` (and a primitive's ``_name`` sibling); return the JSON names added."""
        kind, repeats, arg, _, _, code = spec
        plan.props[name] = (kind, repeats, arg, group, name, code)
        # Element.id, Resource.id and Extension.url are System types and Narrative.div is
        # xhtml: the JSON format gives none of them a ``_name`` sibling.
        if kind not in _PRIMITIVE_KINDS or kind == _XHTML or name == "id":
            return [name]
        if plan.type_name == "Extension" and name == "url":
            return [name]
        plan.props["_" + name] = (_SIBLING, repeats, name, group, name, code)
        return [name, "_" + name]

    def reference_plan(self, targets: list[str] | None) -> _Plan:
        """Reference, with the element's allowed target types attached to ``reference``."""
        allowed = None if not targets or "Resource" in targets else frozenset(targets)
        key = "Reference|" + ",".join(sorted(allowed or ()))
        plan = self.plans.get(key)
        if plan is None:
            generic = self.type_plan("Reference")
            plan = self.plans[key] = _Plan("Reference")
            plan.props = dict(generic.props)
            plan.props["reference"] = (_REF, False, allowed, None, "reference", "string")
            plan.required = generic.required
        return plan


_compiler: _Compiler | None = None
_resource_plans: dict[str, _Plan] = {}  # a plan is published here only once complete
_lock = threading.Lock()


def _resource_plan(resource_type: str) -> _Plan:
    plan = _resource_plans.get(resource_type)
    if plan is None:
        global _compiler
        with _lock:
            if _compiler is None:
                _compiler = _Compiler()
            plan = _resource_plans[resource_type] = _compiler.type_plan(resource_type)
    return plan


def _sibling_plan() -> _Plan:
    """What a primitive's ``_name`` sibling holds: its Element.id and extensions."""
    assert _compiler is not None  # every plan in use came from it
    return _compiler.primitive_element


# --- checking ---------------------------------------------------------------------------------

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII).fullmatch
_RELATIVE = re.compile(
    r"([A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?", re.ASCII
).fullmatch
_CONDITIONAL = re.compile(r"([A-Za-z]+)\?\S.*", re.ASCII | re.DOTALL).fullmatch
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+", re.ASCII).fullmatch
_UUID = re.compile(
    r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
).fullmatch
_OID = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+", re.ASCII).fullmatch
_STRING = re.compile(r"[ \r\n\t\S]+", re.ASCII).fullmatch


def _expression(node: _Node, name: str | None = None, index: int | None = None) -> str:
    parts = [] if name is None else [name if index is None else f"{name}[{index}]"]
    while node is not None:
        node, name, index = node
        parts.append(name if index is None else f"{name}[{index}]")
    return ".".join(reversed(parts))


def _report(
    out: list[Issue], code: str, message: str, node: _Node, name: str | None, index: int | None
) -> None:
    out.append(Issue(message, _expression(node, name, index), code=code))
    if len(out) >= MAX_ISSUES:
        raise _Full


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    for kind, what in ((str, "a string"), (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return what if value else f"an empty {what.split()[1]}"
    return type(value).__name__


def _walk(obj: dict[str, Any], plan: _Plan, node: _Node, out: list[Issue], depth: int) -> None:
    """Check one JSON object against ``plan``; ``node`` names it in expressions."""
    if depth > _MAX_DEPTH:
        _report(out, "structure", f"Nested deeper than {_MAX_DEPTH} levels", node, None, None)
        return
    props = plan.props
    chosen: dict[str, str] | None = None
    for key, value in obj.items():
        spec = props.get(key)
        if spec is None:
            _unknown(key, plan, node, out)
            continue
        kind, repeats, arg, group, name, _ = spec
        if group is not None:
            if chosen is None:
                chosen = {group: name}
            elif chosen.setdefault(group, name) != name:
                message = f"Only one {group}[x] may be present (found {chosen[group]} and {name})"
                _report(out, "structure", message, node, name, None)
        if repeats:
            if type(value) is not list or not value:
                found = _json_kind(value)
                message = f"{key} must be a non-empty array, not {found}"
                _report(out, "structure", message, node, name, None)
            elif kind == _OBJ:
                for i, item in enumerate(value):
                    if type(item) is dict and item:
                        _walk(item, arg, (node, name, i), out, depth + 1)
                    else:
                        _check(spec, item, obj, key, node, i, out, depth)
            elif kind == _STR:
                for i, item in enumerate(value):
                    if type(item) is not str or not item or arg(item) is None:
                        _check(spec, item, obj, key, node, i, out, depth)
            elif kind == _SIBLING:
                _check_sibling_array(arg, value, obj, key, node, out, depth)
            else:
                for i, item in enumerate(value):
                    _check(spec, item, obj, key, node, i, out, depth)
            continue
        # Fast paths for values that are certainly valid; anything else gets the full check.
        if kind == _STR:
            if type(value) is str and value and arg(value) is not None:
                continue
        elif kind == _OBJ:
            if type(value) is dict and value:
                _walk(value, arg, (node, name, None), out, depth + 1)
                continue
        elif kind == _DATE:
            if type(value) is str and value and arg(value) is not None and value[8:10] <= "28":
                continue
        elif kind == _REF:
            if type(value) is str and value and _reference_ok(value, arg):
                continue
        elif kind == _BOOL:
            if type(value) is bool:
                continue
        elif kind == _DEC:
            if type(value) is int or (type(value) is float and value - value == 0.0):
                continue
        elif kind == _INT:
            if type(value) is int and arg[0] <= value <= arg[1]:
                continue
        elif kind == _SKIP:
            continue
        if type(value) is list:
            _report(out, "structure", f"{key} must not be an array", node, name, None)
        else:
            _check(spec, value, obj, key, node, None, out, depth)
    if plan.required:
        for names, element in plan.required:
            for n in names:
                if n in obj:
                    break
            else:
                _report(out, "required", f"{element} is required", node, element, None)


def _check(
    spec: _Spec,
    value: Any,
    obj: dict[str, Any],
    key: str,
    node: _Node,
    index: int | None,
    out: list[Issue],
    depth: int,
) -> None:
    """The full check of one value (one array item when ``index`` is set) of property ``key``."""
    kind, _, arg, _, name, code = spec
    if value is None:
        if kind in _PRIMITIVE_KINDS and index is not None and _has_sibling(obj, key, index):
            return  # a null gap in a primitive array whose ``_key`` item carries extensions
        _report(out, "structure", f"{key} must not be null", node, name, index)
        return
    if kind in (_OBJ, _RES, _CONTAINED):
        if not isinstance(value, dict) or not value:
            message = f"{key} must be a non-empty object, not {_json_kind(value)}"
            _report(out, "structure", message, node, name, index)
        elif kind == _OBJ:  # a dict subclass; plain dicts took the fast path
            _walk(value, arg, (node, name, index), out, depth + 1)
        else:
            _check_resource(value, (node, name, index), out, depth + 1, kind == _CONTAINED)
        return
    if kind == _SIBLING:
        if isinstance(value, dict) and value:
            _walk(value, _sibling_plan(), (node, name, None), out, depth + 1)
        else:
            message = f"{key} must be a non-empty object, not {_json_kind(value)}"
            _report(out, "structure", message, node, name, None)
        return
    expected, what = _JSON_TYPES.get(kind, (str, "a string"))
    if not isinstance(value, expected) or (type(value) is bool and kind != _BOOL):
        message = f"{key} ({code}) must be {what}, not {_json_kind(value)}"
        _report(out, "structure", message, node, name, index)
    elif kind == _INT and not arg[0] <= value <= arg[1]:
        message = f"{key}: {value} is outside the {code} range {arg[0]}..{arg[1]}"
        _report(out, "value", message, node, name, index)
    elif kind == _DEC and value - value != 0:
        _report(out, "value", f"{key}: {value} is not a finite number", node, name, index)
    elif kind in (_STR, _DATE) and (not value or arg(value) is None):
        message = f"{key}: {_shown(value)} is not a valid {code}" if value else f"{key} is empty"
        _report(out, "value", message, node, name, index)
    elif kind == _DATE and not _real_date(value):
        _report(out, "value", f"{key}: {_shown(value)} is not a calendar date", node, name, index)
    elif kind == _XHTML and not value.lstrip().startswith("<div"):
        _report(out, "value", f"{key} must be XHTML starting with <div", node, name, index)
    elif kind == _REF:
        problem = _reference_problem(value, arg)
        if problem:
            _report(out, "value", problem, node, name, index)


def _shown(value: object) -> str:
    """``value`` for a message, cut short: a base64 attachment may be megabytes."""
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + "…" + text[-10:]


def _has_sibling(obj: dict[str, Any], key: str, index: int) -> bool:
    sibling = obj.get("_" + key)
    return type(sibling) is list and index < len(sibling) and bool(sibling[index])


def _check_sibling_array(
    base: str,
    items: list[Any],
    obj: dict[str, Any],
    key: str,
    node: _Node,
    out: list[Issue],
    depth: int,
) -> None:
    """``_name`` beside a repeating primitive: a parallel array with ``null`` where an item has
    no id or extensions (https://hl7.org/fhir/R4/json.html#primitive)."""
    values = obj.get(base)
    if values is not None and (type(values) is not list or len(values) != len(items)):
        message = f"{key} must be an array as long as {base}"
        _report(out, "structure", message, node, base, None)
        return
    plan = _sibling_plan()
    for i, item in enumerate(items):
        if type(item) is dict and item:
            _walk(item, plan, (node, base, i), out, depth + 1)
        elif item is not None:
            message = f"{key}[{i}] must be a non-empty object or null"
            _report(out, "structure", message, node, base, i)
        elif values is None:  # a null here and no value: the item says nothing at all
            _report(out, "structure", f"{key}[{i}] must not be null", node, base, i)


def _check_resource(
    value: dict[str, Any], node: _Node, out: list[Issue], depth: int, contained: bool
) -> None:
    """A resource nested in ``contained``, ``Bundle.entry.resource`` or ``Parameters``."""
    resource_type = value.get("resourceType")
    if resource_type is None:
        _report(out, "required", "resourceType is required", node, None, None)
    elif type(resource_type) is not str or resource_type not in resource_types():
        _report(out, "value", f"Unknown resourceType {_shown(resource_type)}", node, None, None)
    else:
        if contained and "contained" in value:
            message = "A contained resource must not contain resources"
            _report(out, "structure", message, node, "contained", None)
        _walk(value, _resource_plan(resource_type), node, out, depth)


def _reference_problem(value: str, targets: frozenset[str] | None) -> str | None:
    """What is wrong with a literal reference, if anything
    (https://hl7.org/fhir/R4/references.html#literal)."""
    if not value or _STRING(value) is None:
        return f"Invalid reference {_shown(value)}"
    if value[0] == "#":
        if len(value) == 1 or _ID(value, 1) is not None:
            return None
        return f"Invalid local reference {_shown(value)}: expected # or #id"
    if value.startswith("urn:"):
        if _UUID(value) is None and _OID(value) is None:
            return f"Invalid reference {_shown(value)}: a urn must be a urn:uuid: or urn:oid:"
        return None
    if _ABSOLUTE(value) is not None:
        return None  # a resource elsewhere; its type may be one this server does not know
    match = _RELATIVE(value) or _CONDITIONAL(value)
    if match is None:
        return (
            f"Invalid reference {_shown(value)}: expected Type/id, Type?query, an absolute URL, "
            "urn:uuid:, urn:oid: or #id"
        )
    target = match.group(1)
    if target not in resource_types():
        return f"Reference to unknown resource type {_shown(target)}"
    if targets is not None and target not in targets:
        return (
            f"A reference to {target} is not allowed here (allowed: {', '.join(sorted(targets))})"
        )
    return None


@lru_cache(maxsize=32768)
def _reference_ok(value: str, targets: frozenset[str] | None) -> bool:
    """``_reference_problem`` finds nothing. A bundle names its Patient and Encounter in
    nearly every resource: the answer for one text and target set is worked out once."""
    return _reference_problem(value, targets) is None


def _unknown(key: object, plan: _Plan, node: _Node, out: list[Issue]) -> None:
    text = str(key)
    message = f"Unknown element {_shown(text)} in {plan.type_name}"
    for base, types in plan.choices.items():
        if text.startswith(base) and text[len(base) : len(base) + 1].isupper():
            message = f"{text} is not an allowed type for {base}[x] (allowed: {', '.join(types)})"
            break
    else:
        if text.startswith("_") and text[1:] in plan.props:
            message = f"{text} is only allowed beside a primitive element"
    _report(out, "structure", message, node, text, None)


def _real_date(value: str) -> bool:
    """Dates SHALL be valid dates (https://hl7.org/fhir/R4/datatypes.html#date); the regex
    alone lets 2023-02-30 through."""
    if len(value) < 10 or value[8:10] <= "28":
        return True
    year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
    if month == 2:
        return day == 29 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return day <= _DAYS_IN_MONTH[month - 1]


# --- public API -------------------------------------------------------------------------------


def validate_resource_type_name(name: str) -> None:
    """Raise ``FhirError(INVALID)`` unless ``name`` is a concrete R4 resource type.

    https://hl7.org/fhir/R4/resourcelist.html; the abstract ``Resource`` and
    ``DomainResource`` and the data types are not types a client may address.
    """
    if name not in resource_types():
        raise FhirError(
            Category.INVALID, f"unknown resource type {_shown(name)}", code="not-supported"
        )


def validate_resource(resource: object, *, expected_type: str | None = None) -> None:
    """Check that ``resource`` (parsed JSON) is a structurally valid FHIR R4 resource.

    When ``expected_type`` is given (the type in the request URL), ``resourceType`` must equal
    it. Returns ``None`` when valid; otherwise raises :class:`FhirError` with
    ``Category.INVALID`` (HTTP 400) listing every issue found, up to :data:`MAX_ISSUES`, each
    with a FHIRPath ``expression`` such as ``Patient.name[0].given[1]`` and an issue code
    ``structure``, ``required``, ``value`` or ``invalid``.

    Invariants, terminology bindings and profiles are out of scope (see the module docstring).
    """
    if not isinstance(resource, dict):
        message = f"A resource must be a JSON object, not {_json_kind(resource)}"
        raise FhirError(Category.INVALID, message, code="structure")
    resource_type = resource.get("resourceType")
    if resource_type is None:
        raise FhirError(Category.INVALID, "resourceType is required", code="required")
    if type(resource_type) is not str or resource_type not in resource_types():
        message = f"Unknown resourceType {_shown(resource_type)}"
        raise FhirError(Category.INVALID, message, code="value")
    out: list[Issue] = []
    if expected_type is not None and resource_type != expected_type:
        message = (
            f"resourceType {resource_type!r} does not match the type in the URL, "
            f"{_shown(expected_type)}"
        )
        out.append(Issue(message, resource_type, code="invalid"))
    try:
        _walk(resource, _resource_plan(resource_type), (None, resource_type, None), out, 0)
    except _Full:
        message = f"More than {MAX_ISSUES} issues; the rest were not reported"
        out.append(Issue(message, severity="information", code="too-costly"))
    if out:
        raise FhirError(Category.INVALID, issues=out)
