"""Terminology operations over the repository —
https://hl7.org/fhir/R4/terminology-service.html.

``CodeSystem/$lookup``, ``CodeSystem/$validate-code``, ``CodeSystem/$subsumes``,
``ValueSet/$expand``, ``ValueSet/$validate-code`` and ``ConceptMap/$translate``, at type
level and on an instance (``CodeSystem/{id}/$subsumes``), by GET with query parameters or
POST with a ``Parameters`` body. Answers are ``Parameters`` (a ``ValueSet`` for
``$expand``). :data:`OPERATIONS` is built from
:data:`huitong.terminology.OPERATION_DEFINITIONS`, so what is routed and advertised in the
CapabilityStatement is what the terminology service implements. Deviation, documented:
R4 defines ``$lookup`` at type level only; an instance-level ``CodeSystem/{id}/$lookup``
is also answered (against that resource).

One :class:`~huitong.terminology.Terminology` is kept per repository, so compiled indexes
survive between requests; it stamps expansions with the server's clock and ids.

Failure contract: NOT_FOUND for an unknown code system, value set or concept map (and, at
instance level, as the read interaction: NOT_FOUND/GONE); INVALID for missing, repeated or
mistyped parameters — both raised by the terminology service as bilingual FhirErrors.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from huitong.server.operations.parameters import operation_inputs
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse
from huitong.store.repository import Repository
from huitong.terminology import OPERATION_DEFINITIONS, Terminology
from huitong.terminology.repository_source import RepositoryTerminologySource

__all__ = ["DEFINITIONS", "SUMMARIES", "handler_for", "terminology_for"]

_services: weakref.WeakKeyDictionary[Repository, Terminology] = weakref.WeakKeyDictionary()
_lock = threading.Lock()

SUMMARIES: dict[tuple[str, str], str] = {
    ("CodeSystem", "lookup"): "Look up a code: display, designations, properties",
    ("CodeSystem", "validate-code"): "Is a code in the code system?",
    ("CodeSystem", "subsumes"): "Does one code subsume another?",
    ("ValueSet", "expand"): "Expand a value set (filter over Chinese, pinyin, English; paging)",
    ("ValueSet", "validate-code"): "Is a code in the value set?",
    ("ConceptMap", "translate"): "Translate a code through concept maps",
}


def terminology_for(ctx: ServerContext) -> Terminology:
    """The terminology service over ``ctx.repo`` (one per repository, created on first use)."""
    with _lock:
        found = _services.get(ctx.repo)
        if found is None:
            found = Terminology(RepositoryTerminologySource(ctx.repo), clock=ctx.clock,
                                new_id=ctx.new_id)
            _services[ctx.repo] = found
        return found


def _instance(terms: Terminology, req: FhirRequest) -> dict[str, Any] | None:
    p = req.path_params
    if "id" not in p:
        return None
    source = terms.source
    assert isinstance(source, RepositoryTerminologySource)
    return source.read(p["type"], p["id"])


Handler = Callable[[ServerContext, FhirRequest], FhirResponse]


def _run(call: Callable[[Terminology, list[tuple[str, Any]], dict[str, Any] | None],
                        dict[str, Any]]) -> Handler:
    def handler(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
        terms = terminology_for(ctx)
        inputs = operation_inputs(req)
        return FhirResponse(200, call(terms, inputs, _instance(terms, req)))

    return handler


_HANDLERS: dict[tuple[str, str], Handler] = {
    ("CodeSystem", "lookup"): _run(lambda t, i, r: t.lookup(i, code_system=r)),
    ("CodeSystem", "validate-code"): _run(lambda t, i, r: t.validate_code(i, code_system=r)),
    ("CodeSystem", "subsumes"): _run(lambda t, i, r: t.subsumes(i, code_system=r)),
    ("ValueSet", "expand"): _run(lambda t, i, r: t.expand(i, value_set=r)),
    ("ValueSet", "validate-code"): _run(
        lambda t, i, r: t.validate_code_in_value_set(i, value_set=r)),
    ("ConceptMap", "translate"): _run(lambda t, i, r: t.translate(i, concept_map=r)),
}


def handler_for(resource_type: str, name: str) -> Handler:
    """The handler of ``resource_type/$name`` (KeyError when there is none)."""
    return _HANDLERS[(resource_type, name)]


# (name, levels, resource type, handler, definition, summary): the operations registry rows.
DEFINITIONS: tuple[tuple[str, str, str, Handler, str, str], ...] = tuple(
    (name, levels, rtype, handler_for(rtype, name), url, SUMMARIES[(rtype, name)])
    for name, rtype, levels, url in OPERATION_DEFINITIONS
)
