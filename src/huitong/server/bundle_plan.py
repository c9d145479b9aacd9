"""Planning a ``batch`` or ``transaction`` Bundle, with no I/O —
https://hl7.org/fhir/R4/http.html#transaction.

:func:`plan_bundle` checks the Bundle's shape and turns each entry into a :class:`PlannedEntry`
(method, target, criteria, preconditions, resource). For a transaction it also

- orders the entries as the specification's processing rules require
  (https://hl7.org/fhir/R4/http.html#trules): DELETE, then POST, then PUT/PATCH, then
  GET/HEAD, each group in Bundle order;
- assigns a server id to every non-conditional POST in advance, so that ``urn:uuid:`` (and
  other) ``fullUrl`` values can be mapped to ``Type/id`` before anything is written;
- collects, in ONE walk over each resource (including ``contained`` resources and
  extensions), every ``Reference.reference`` string and every narrative ``div`` that mentions
  a ``urn:uuid:``, so that :func:`rewrite_references` can point them at the final ids.

Conditional targets (``ifNoneExist``, ``PUT Type?criteria``, references like
``Patient?identifier=x``) need a search, which is I/O: :mod:`huitong.server.bundle` resolves
them inside the transaction and then calls :func:`rewrite_references`.

Failure contract: INVALID (400) with ``Bundle.entry[i]...`` in the issue's expression for a
malformed Bundle or entry; NOT_FOUND for an entry URL naming an unknown resource type.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson

from huitong.fhir.definitions import resource_types
from huitong.fhir.errors import Category, FhirError
from huitong.store.repository import StoredResource

__all__ = [
    "BundlePlan",
    "PlannedEntry",
    "collect_references",
    "conditional_reference",
    "plan_bundle",
    "processing_order",
    "rewrite_references",
]

Kind = Literal["batch", "transaction"]
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII).fullmatch
_CONDITIONAL_REF = re.compile(r"([A-Z][A-Za-z]+)\?(.+)", re.ASCII | re.DOTALL).fullmatch
_URN_UUID = "urn:uuid:"
_TYPE_PREFIX = re.compile(r"^(?:[A-Z][A-Za-z]*)?\?")


@dataclass(slots=True)
class PlannedEntry:
    """One entry, checked. ``path`` is relative to the base (``Patient/1``); ``criteria`` are
    the query parameters of a conditional PUT/PATCH/DELETE or a search; ``id`` is the
    target id (for POST: the pre-assigned server id)."""

    index: int
    method: str
    path: str
    params: list[tuple[str, str]]
    full_url: str | None
    resource: Any
    resource_type: str | None = None
    id: str | None = None
    if_match: str | None = None
    if_none_exist: list[tuple[str, str]] | None = None
    if_none_match: str | None = None
    conditional: bool = False
    # set when ``ifNoneExist`` found the resource (``existing``): nothing is written
    exists: bool = False
    existing: StoredResource | None = None
    # batch only: why this entry cannot be processed (the others still are)
    error: FhirError | None = None

    @property
    def expression(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def is_write(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


@dataclass(slots=True)
class BundlePlan:
    """``aliases`` maps each ``fullUrl`` known before any search to ``Type/id``;
    ``refs`` are the dicts holding a ``reference`` string (or ``div`` with ``urn:uuid:``)."""

    kind: Kind
    entries: list[PlannedEntry]
    order: list[int] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    refs: list[dict[str, Any]] = field(default_factory=list)
    divs: list[dict[str, Any]] = field(default_factory=list)
    # the entry index each of ``refs`` came from (for error reports)
    ref_owners: list[int] = field(default_factory=list)


def _invalid(message: str, expression: str, code: str = "structure") -> FhirError:
    return FhirError(Category.INVALID, message, expression=expression, code=code)


def _relative_url(url: str, base_url: str, expression: str) -> str:
    """Strip this server's base from an absolute request URL; refuse other servers."""
    if "://" in url.split("?", 1)[0]:
        prefix = base_url.rstrip("/") + "/"
        if base_url and url.startswith(prefix):
            return url[len(prefix):]
        raise _invalid("request.url must be relative to this server's base", expression,
                       "value")
    return url.lstrip("/")


def _entry(index: int, raw: Any, base_url: str, kind: Kind) -> PlannedEntry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise _invalid("an entry must be an object", where)
    request = raw.get("request")
    if not isinstance(request, dict):
        raise _invalid("entry.request is required in a batch or transaction",
                       f"{where}.request", "required")
    method, url = request.get("method"), request.get("url")
    if not isinstance(method, str) or method not in METHODS:
        raise _invalid(f"request.method must be one of {', '.join(sorted(METHODS))}",
                       f"{where}.request.method", "value")
    if not isinstance(url, str) or not url.strip():
        raise _invalid("request.url is required", f"{where}.request.url", "required")
    url = _relative_url(url.strip(), base_url, f"{where}.request.url")
    path, _, query = url.partition("?")
    path = path.strip("/")
    params = parse_qsl(query, keep_blank_values=True, errors="replace")
    full_url = raw.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise _invalid("fullUrl must be a string", f"{where}.fullUrl")
    resource = raw.get("resource")
    if method == "POST" and _is_search(path):
        method = "GET"  # a search, processed with the reads
    entry = PlannedEntry(index, method, path, params, full_url, resource)
    for key, attr in (("ifMatch", "if_match"), ("ifNoneMatch", "if_none_match")):
        value = request.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise _invalid(f"request.{key} must be a string", f"{where}.request.{key}")
            setattr(entry, attr, value)
    if_none_exist = request.get("ifNoneExist")
    if if_none_exist is not None:
        if not isinstance(if_none_exist, str):
            raise _invalid("request.ifNoneExist must be a string",
                           f"{where}.request.ifNoneExist")
        criteria = _TYPE_PREFIX.sub("", if_none_exist.strip(), count=1)
        entry.if_none_exist = parse_qsl(criteria, keep_blank_values=True, errors="replace")
    if method in ("POST", "PUT") and not _is_resource(resource) and not _is_search(path):
        raise _invalid(f"a {method} entry needs a resource", f"{where}.resource", "required")
    if kind == "transaction":
        _target(entry)
    return entry


def _batch_entry(index: int, raw: Any, base_url: str) -> PlannedEntry:
    """In a batch a malformed entry fails alone: its error is kept for its response."""
    try:
        return _entry(index, raw, base_url, "batch")
    except FhirError as err:
        return PlannedEntry(index, "GET", "", [], None, None, error=err)


def _is_resource(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("resourceType"), str)


def _is_search(path: str) -> bool:
    return path == "_search" or path.endswith("/_search")


def _target(entry: PlannedEntry) -> None:
    """Set ``resource_type``/``id``/``conditional`` for a transaction write entry."""
    if not entry.is_write:
        return
    parts = entry.path.split("/") if entry.path else []
    where = f"{entry.expression}.request.url"
    if entry.method == "POST":
        if len(parts) != 1:
            raise _invalid("in a transaction, POST creates: request.url must be a type",
                           where, "not-supported")
    elif len(parts) not in (1, 2) or (len(parts) == 1 and not entry.params):
        raise _invalid(f"{entry.method} needs Type/id or Type?criteria", where, "value")
    rtype = parts[0]
    if rtype not in resource_types():
        raise FhirError(Category.NOT_FOUND, f"unknown resource type {rtype!r}",
                        expression=where)
    entry.resource_type = rtype
    if len(parts) == 2:
        if not _ID(parts[1]):
            raise _invalid("a FHIR id is 1-64 characters of A-Z a-z 0-9 - .", where, "value")
        entry.id = parts[1]
    elif entry.method != "POST":
        entry.conditional = True
    if entry.method in ("POST", "PUT") and entry.resource["resourceType"] != rtype:
        raise _invalid(
            f"the resource is a {entry.resource['resourceType']}, but request.url is for "
            f"{rtype}", f"{entry.expression}.resource.resourceType", "value",
        )


def processing_order(entries: list[PlannedEntry]) -> list[int]:
    """Entry indexes in transaction processing order (stable within each method group)."""
    return sorted(range(len(entries)), key=lambda i: (_ORDER[entries[i].method], i))


def collect_references(resource: Any, refs: list[dict[str, Any]],
                       divs: list[dict[str, Any]]) -> None:
    """Append every dict holding a ``reference`` string (a Reference) to ``refs``, and every
    narrative holding a ``div`` that mentions ``urn:uuid:`` to ``divs``. One iterative walk
    (contained resources, extensions and nested backbone elements included). FHIR JSON has
    no arrays directly inside arrays, so only objects inside arrays are visited."""
    if type(resource) is not dict:
        return
    stack = [resource]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        for key, value in node.items():
            kind = type(value)
            if kind is dict:
                push(value)
            elif kind is list:
                for item in value:
                    if type(item) is dict:
                        push(item)
            elif kind is str:
                if key == "reference":
                    refs.append(node)
                elif key == "div" and _URN_UUID in value:
                    divs.append(node)


def conditional_reference(reference: str) -> tuple[str, list[tuple[str, str]]] | None:
    """``Patient?identifier=x|1`` -> (``Patient``, criteria); None for other references."""
    m = _CONDITIONAL_REF(reference)
    if m is None:
        return None
    return m.group(1), parse_qsl(m.group(2), keep_blank_values=True, errors="replace")


def rewrite_references(plan: BundlePlan, mapping: dict[str, str]) -> None:
    """Point every collected reference found in ``mapping`` at its target (in place)."""
    if not mapping:
        return
    get = mapping.get
    for node in plan.refs:
        target = get(node["reference"])
        if target is not None:
            node["reference"] = target
    for node in plan.divs:
        div = node["div"]
        for start in [m.start() for m in re.finditer(re.escape(_URN_UUID), div)][::-1]:
            end = start + len(_URN_UUID) + 36
            target = get(div[start:end])
            if target is not None:
                div = div[:start] + target + div[end:]
        node["div"] = div


def decode_patch(entry: PlannedEntry) -> Any:
    """The JSON Patch operations of a PATCH entry: a ``Binary`` with contentType
    ``application/json-patch+json`` (base64 ``data``), as the specification carries patches
    in Bundles. FHIRPath Patch (``Parameters``) is UNSUPPORTED_MEDIA."""
    res = entry.resource
    where = f"{entry.expression}.resource"
    if isinstance(res, list):
        return res
    if not _is_resource(res):
        raise _invalid("a PATCH entry needs a Binary resource holding a JSON Patch", where,
                       "required")
    if res["resourceType"] == "Parameters":
        raise FhirError(Category.UNSUPPORTED_MEDIA, "FHIRPath Patch is not supported; use "
                        "JSON Patch (Binary, application/json-patch+json)", expression=where)
    if res["resourceType"] != "Binary" or not str(res.get("contentType", "")).startswith(
        "application/json-patch+json"
    ):
        raise _invalid("a PATCH entry needs a Binary with contentType "
                       "application/json-patch+json", where, "value")
    try:
        return orjson.loads(base64.b64decode(str(res.get("data", "")), validate=True))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise _invalid("Binary.data is not base64-encoded JSON", f"{where}.data",
                       "value") from None


def plan_bundle(bundle: Any, *, base_url: str, new_id: Callable[[], str]) -> BundlePlan:
    """Check a batch/transaction Bundle and plan it (see the module docstring)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise _invalid("POST to the base takes a Bundle of type batch or transaction",
                       "Bundle")
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise _invalid("Bundle.type must be batch or transaction", "Bundle.type", "value")
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise _invalid("Bundle.entry must be an array", "Bundle.entry")
    if kind == "batch":
        return BundlePlan(kind, [_batch_entry(i, e, base_url) for i, e in enumerate(raw)])
    entries = [_entry(i, e, base_url, kind) for i, e in enumerate(raw)]
    plan = BundlePlan(kind, entries)
    plan.order = processing_order(entries)
    seen: dict[str, int] = {}
    for e in entries:
        if e.method == "POST" and e.if_none_exist is None:
            e.id = new_id()
        if e.full_url:
            if e.full_url in seen and e.is_write:
                raise _invalid(f"fullUrl {e.full_url} appears in entries {seen[e.full_url]} "
                               f"and {e.index}", f"{e.expression}.fullUrl", "duplicate")
            seen[e.full_url] = e.index
            if e.id is not None and e.method in ("POST", "PUT"):
                plan.aliases[e.full_url] = f"{e.resource_type}/{e.id}"
        if e.method in ("POST", "PUT") and _is_resource(e.resource):
            before = len(plan.refs)
            collect_references(e.resource, plan.refs, plan.divs)
            plan.ref_owners += [e.index] * (len(plan.refs) - before)
    return plan
