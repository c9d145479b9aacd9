"""The CapabilityStatement, generated — https://hl7.org/fhir/R4/capabilitystatement.html.

Everything in it is read from the tables the server runs on: the interactions from
:data:`huitong.server.routing.ROUTES`, the operations from
:data:`huitong.server.operations.OPERATIONS`, the search parameters from
:func:`huitong.fhir.search.params.supported_params` and the types from
:func:`huitong.fhir.definitions.resource_types`. It cannot advertise what is not routed.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import huitong
from huitong.fhir.dates import format_instant
from huitong.fhir.definitions import FHIR_VERSION, resource_types
from huitong.fhir.search.params import SearchParamDef, supported_params
from huitong.server.operations import OPERATIONS
from huitong.server.routing import ROUTES, Interaction

__all__ = ["SECURITY_DESCRIPTION", "capability_statement", "type_interactions"]

SECURITY_DESCRIPTION = (
    "No authentication or authorisation yet: every client may read and write everything. "
    "Bind the server to a trusted network only. 尚未启用身份认证与授权。"
)
_NOT_PER_TYPE = frozenset({"operation", "capabilities"})


def _interactions(levels: tuple[str, ...]) -> list[Interaction]:
    return [i for r in ROUTES for i in r.methods.values() if i.level in levels]


@cache
def type_interactions() -> tuple[str, ...]:
    """FHIR interaction codes available on every resource type, in routing-table order."""
    codes: dict[str, None] = {}
    for i in _interactions(("type", "instance")):
        for code in i.codes:
            if code not in _NOT_PER_TYPE:
                codes.setdefault(code, None)
    return tuple(codes)


def _conditional(code: str) -> bool:
    return any(code in i.codes and i.conditional for i in _interactions(("type",)))


def _search_param(d: SearchParamDef) -> dict[str, Any]:
    out: dict[str, Any] = {"name": d.code, "type": d.type}
    if d.url:
        out["definition"] = d.url
    return out


@cache
def _revincludes() -> dict[str, tuple[str, ...]]:
    """``{target type: ("Source:param", ...)}`` for every supported reference parameter."""
    out: dict[str, list[str]] = {}
    types = sorted(resource_types())
    for source in types:
        for d in supported_params(source):
            if d.type != "reference" or d.code.startswith("_"):
                continue
            for target in d.targets or types:
                out.setdefault(target, []).append(f"{source}:{d.code}")
    return {k: tuple(v) for k, v in out.items()}


def _operations(level: str, resource_type: str | None) -> list[dict[str, str]]:
    return [
        {"name": op.name, "definition": op.definition}
        for op in OPERATIONS
        if level in op.levels and (resource_type is None or op.types is None
                                   or resource_type in op.types)
    ]


@cache
def _resource_entry(resource_type: str) -> dict[str, Any]:
    params = supported_params(resource_type)
    includes = [f"{resource_type}:{d.code}" for d in params
                if d.type == "reference" and not d.code.startswith("_")]
    entry: dict[str, Any] = {
        "type": resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": c} for c in type_interactions()],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": _conditional("create"),
        "conditionalRead": "not-match",
        "conditionalUpdate": _conditional("update"),
        "conditionalDelete": "single" if _conditional("delete") else "not-supported",
        "referencePolicy": ["literal", "logical"],
        "searchInclude": ["*", *includes],
        "searchRevInclude": list(_revincludes().get(resource_type, ())),
        "searchParam": [_search_param(d) for d in params],
    }
    ops = [
        o for level in ("type", "instance") for o in _operations(level, resource_type)
    ]
    if ops:
        entry["operation"] = list({o["name"]: o for o in ops}.values())
    return entry


def capability_statement(base_url: str, *, now: int) -> dict[str, Any]:
    """The server's CapabilityStatement (``kind: instance``)."""
    system_codes: dict[str, None] = {}
    for i in _interactions(("system",)):
        for code in i.codes:
            if code not in _NOT_PER_TYPE:
                system_codes.setdefault(code, None)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_instant(now),
        "publisher": "Huitong",
        "kind": "instance",
        "software": {"name": "Huitong", "version": huitong.__version__},
        "implementation": {"description": "Huitong (汇通) FHIR R4 server", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "security": {"cors": False, "description": SECURITY_DESCRIPTION},
            "resource": [_resource_entry(t) for t in sorted(resource_types())],
            "interaction": [{"code": c} for c in system_codes],
            "searchParam": [_search_param(d) for d in supported_params(None)],
            "operation": _operations("system", None),
        }],
    }
