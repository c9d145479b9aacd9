"""The FHIR REST routing table — https://hl7.org/fhir/R4/http.html#summary.

:data:`ROUTES` is the ONE list of what this server does: the HTTP dispatcher
(:mod:`huitong.server.app`), ``batch``/``transaction`` entries (:mod:`huitong.server.bundle`),
the CapabilityStatement (:mod:`huitong.server.capability`) and the OpenAPI document
(:mod:`huitong.server.openapi`) all read it, so what we advertise is what we route.

Paths are relative to the FHIR base and split on ``/``. Pattern tokens: ``{type}`` a known
resource type, ``{id}`` a FHIR id, ``{vid}`` a version, ``{op}`` an ``$operation``,
``{compartment}`` a resource type or ``*`` inside a compartment. Literal segments come
first, so ``_history`` is never taken for an id.

Failure contract (:func:`match`): NOT_FOUND for a path that names nothing (unknown resource
type, unknown segment), INVALID for a malformed id, NOT_ALLOWED (405, with ``Allow``) for a
known path and a method it does not take.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from huitong.fhir.definitions import compartments, resource_types
from huitong.fhir.errors import Category, FhirError
from huitong.server.interactions import (
    capabilities,
    create,
    delete,
    history,
    patch,
    read,
    search,
    update,
    vread,
)
from huitong.server.operations import dispatch_operation
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse

__all__ = ["ROUTES", "Interaction", "MethodNotAllowed", "Route", "match"]

Handler = Callable[[ServerContext, FhirRequest], FhirResponse]
Level = Literal["instance", "type", "system"]

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII).fullmatch
_TYPE_SHAPE = re.compile(r"[A-Z][A-Za-z]{0,63}", re.ASCII).fullmatch


@dataclass(frozen=True, slots=True)
class Interaction:
    """One thing a method on a path does. ``codes`` are the FHIR interaction codes it
    implements (CapabilityStatement ``interaction.code``); ``conditional`` marks the
    ``Type?criteria`` variants."""

    codes: tuple[str, ...]
    level: Level
    handler: Handler
    summary: str
    conditional: bool = False
    write: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    pattern: tuple[str, ...]
    methods: dict[str, Interaction] = field(default_factory=dict)

    @property
    def template(self) -> str:
        return "/".join(self.pattern)


class MethodNotAllowed(FhirError):
    """NOT_ALLOWED with the methods the path does take (for the ``Allow`` header)."""

    allow: tuple[str, ...]

    def __init__(self, method: str, path: str, allow: tuple[str, ...]) -> None:
        super().__init__(
            Category.NOT_ALLOWED, f"{method} is not supported on /{path}; use {', '.join(allow)}"
        )
        self.allow = allow


def _bundle(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    from huitong.server.bundle import process_bundle  # bundle dispatches through this table

    return process_bundle(ctx, req)


def _i(codes: str, level: Level, handler: Handler, summary: str, **kw: bool) -> Interaction:
    return Interaction(tuple(codes.split()), level, handler, summary, **kw)


_op = dispatch_operation
ROUTES: tuple[Route, ...] = (
    Route((), {
        "GET": _i("search-system", "system", search.search_system, "Search all resource types"),
        "POST": _i("transaction batch", "system", _bundle, "Process a batch or transaction Bundle",
                   write=True),
    }),
    Route(("metadata",), {
        "GET": _i("capabilities", "system", capabilities.capabilities, "CapabilityStatement"),
    }),
    Route(("_history",), {
        "GET": _i("history-system", "system", history.history_system, "History of everything"),
    }),
    Route(("_search",), {
        "GET": _i("search-system", "system", search.search_system, "Search all types"),
        "POST": _i("search-system", "system", search.search_system, "Search all types (form)"),
    }),
    Route(("{op}",), {
        "GET": _i("operation", "system", _op, "System-level operation"),
        "POST": _i("operation", "system", _op, "System-level operation"),
    }),
    Route(("{type}",), {
        "GET": _i("search-type", "type", search.search_type, "Search one type"),
        "POST": _i("create", "type", create.create, "Create (If-None-Exist: conditional)",
                   conditional=True, write=True),
        "PUT": _i("update", "type", update.conditional_update, "Conditional update",
                  conditional=True, write=True),
        "PATCH": _i("patch", "type", patch.conditional_patch, "Conditional patch (JSON Patch)",
                    conditional=True, write=True),
        "DELETE": _i("delete", "type", delete.conditional_delete,
                     "Conditional delete (single match only)", conditional=True, write=True),
    }),
    Route(("{type}", "_search"), {
        "GET": _i("search-type", "type", search.search_type, "Search one type"),
        "POST": _i("search-type", "type", search.search_type, "Search one type (form body)"),
    }),
    Route(("{type}", "_history"), {
        "GET": _i("history-type", "type", history.history_type, "History of one type"),
    }),
    Route(("{type}", "{op}"), {
        "GET": _i("operation", "type", _op, "Type-level operation"),
        "POST": _i("operation", "type", _op, "Type-level operation"),
    }),
    Route(("{type}", "{id}"), {
        "GET": _i("read", "instance", read.read, "Read the current version"),
        "PUT": _i("update", "instance", update.update, "Update (or create with this id)",
                  write=True),
        "PATCH": _i("patch", "instance", patch.patch, "Patch (JSON Patch)", write=True),
        "DELETE": _i("delete", "instance", delete.delete, "Delete", write=True),
    }),
    Route(("{type}", "{id}", "_history"), {
        "GET": _i("history-instance", "instance", history.history_instance, "Versions"),
    }),
    Route(("{type}", "{id}", "_history", "{vid}"), {
        "GET": _i("vread", "instance", vread.vread, "Read one version"),
    }),
    Route(("{type}", "{id}", "{op}"), {
        "GET": _i("operation", "instance", _op, "Instance-level operation"),
        "POST": _i("operation", "instance", _op, "Instance-level operation"),
    }),
    Route(("{type}", "{id}", "{compartment}"), {
        "GET": _i("search-type", "instance", search.search_compartment, "Compartment search"),
    }),
)


def _fits(token: str, segment: str) -> bool:
    """Does ``segment`` have the shape of ``token``? (Validity is checked after matching.)"""
    if token == "{type}":
        return bool(_TYPE_SHAPE(segment))
    if token == "{op}":
        return segment.startswith("$")
    if token in ("{id}", "{vid}"):
        return not segment.startswith(("_", "$")) and segment != "*"
    if token == "{compartment}":
        return segment == "*" or bool(_TYPE_SHAPE(segment))
    return token == segment


def _check(params: dict[str, str]) -> None:
    rtype = params.get("type")
    if rtype is not None and rtype not in resource_types():
        raise FhirError(Category.NOT_FOUND, f"unknown resource type {rtype!r}")
    rid = params.get("id")
    if rid is not None and not _ID(rid):
        raise FhirError(
            Category.INVALID, "a FHIR id is 1-64 characters of A-Z a-z 0-9 - .", code="value"
        )
    vid = params.get("vid")
    if vid is not None and not (vid.isascii() and vid.isdigit() and len(vid) < 19):
        raise FhirError(Category.NOT_FOUND, f"{rtype}/{rid} has no version {vid!r}")
    comp = params.get("compartment")
    if comp is not None:
        if rtype not in compartments():
            raise FhirError(Category.NOT_FOUND, f"{rtype} is not a compartment")
        if comp != "*" and comp not in resource_types():
            raise FhirError(Category.NOT_FOUND, f"unknown resource type {comp!r}")


def match(method: str, path: str) -> tuple[Interaction, dict[str, str]]:
    """The interaction for ``method`` on ``path`` (relative to the base) and its path
    parameters. HEAD is answered as GET."""
    segments = [s for s in path.strip("/").split("/")] if path.strip("/") else []
    for route in ROUTES:
        if len(route.pattern) != len(segments):
            continue
        if not all(_fits(t, s) for t, s in zip(route.pattern, segments, strict=True)):
            continue
        params = {
            t[1:-1]: s for t, s in zip(route.pattern, segments, strict=True) if t.startswith("{")
        }
        _check(params)
        interaction = route.methods.get("GET" if method == "HEAD" else method)
        if interaction is None:
            allow = tuple(route.methods) + (("HEAD",) if "GET" in route.methods else ())
            raise MethodNotAllowed(method, path.strip("/"), allow)
        return interaction, params
    raise FhirError(Category.NOT_FOUND, f"no FHIR endpoint at /{path.strip('/')}")
