"""The search-parameter registry as data — https://hl7.org/fhir/R4/searchparameter-registry.html.

Built once from the official R4 registry (:func:`huitong.fhir.definitions.search_parameters`).
This module is the single truth of what Huitong searches on: the parser
(:mod:`huitong.fhir.search.parse`) accepts exactly :func:`supported_params`, the SQL compiler
(:mod:`huitong.store.search_sql`) executes exactly those, and the CapabilityStatement lists
them.

Resource-level parameters (https://hl7.org/fhir/R4/search.html#all) belong to every type:
``_id`` (matched against the resource id), ``_lastUpdated`` (against ``meta.lastUpdated``),
``_tag``, ``_security`` (token rows), ``_profile``, ``_source`` (uri rows) and ``_list``
(membership of a List, https://hl7.org/fhir/R4/search.html#list). ``_has`` is a syntax, not a
parameter, and is handled by the parser. Not supported, so never listed: ``_text`` and
``_content`` (need a full-text index), ``_query`` and ``_filter`` (named/filter queries), and
every parameter of type ``special`` (``Location.near``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from huitong.fhir.definitions import resource_types, search_parameters

__all__ = [
    "SUPPORTED_TYPES",
    "ComponentDef",
    "SearchParamDef",
    "param_for",
    "params_for",
    "supported_params",
]

# the parameter types the SQL compiler executes
SUPPORTED_TYPES = frozenset(
    {"string", "token", "reference", "date", "number", "quantity", "uri", "composite"}
)

# Resource-level parameters with their own SQL (not an index table of their type)
_LIST = "_list"
_UNSUPPORTED_CODES = frozenset({"_text", "_content", "_query", "_filter"})


@dataclass(frozen=True, slots=True)
class ComponentDef:
    """One component of a composite parameter: the component parameter's code and type."""

    code: str
    type: str
    expression: str | None = None


@dataclass(frozen=True, slots=True)
class SearchParamDef:
    """One search parameter as the registry defines it.

    ``base`` holds every resource type the definition applies to (``Resource`` for the
    Resource-level ones); ``targets`` the reference target types (empty for any type);
    ``components`` the parts of a composite parameter, in order; ``url`` the canonical
    SearchParameter URL (None for ``_list``, which the registry does not define).
    """

    code: str
    type: str
    base: tuple[str, ...]
    expression: str | None
    targets: tuple[str, ...] = ()
    components: tuple[ComponentDef, ...] = ()
    url: str | None = None

    @property
    def supported(self) -> bool:
        """True when the SQL compiler can execute a search on this parameter."""
        if self.code == _LIST:
            return True
        if self.code in _UNSUPPORTED_CODES or self.type not in SUPPORTED_TYPES:
            return False
        if self.type == "composite":
            return bool(self.components) and all(
                c.type in SUPPORTED_TYPES and c.type != "composite" for c in self.components
            )
        return True


_LIST_DEF = SearchParamDef(
    code=_LIST,
    type="special",
    base=("Resource",),
    expression=None,
    url=None,
)


def _from_registry(entry: dict[str, Any]) -> SearchParamDef:
    components = tuple(
        ComponentDef(c["code"], c["type"], c.get("expression"))
        for c in entry.get("component") or ()
    )
    return SearchParamDef(
        code=entry["code"],
        type=entry["type"],
        base=tuple(entry["base"]),
        expression=entry.get("expression"),
        targets=tuple(entry.get("target") or ()),
        components=components,
        url=entry.get("url"),
    )


def _is_example(url: object) -> bool:
    # the registry carries a few example definitions (SearchParameter/example...) that
    # duplicate real codes; the first real definition wins
    return isinstance(url, str) and url.rsplit("/", 1)[-1].startswith("example")


@cache
def _registry() -> tuple[dict[str, SearchParamDef], dict[str, dict[str, SearchParamDef]]]:
    """(resource-level params, {resource type: {code: def}}) — built once."""
    common: dict[str, SearchParamDef] = {}
    by_type: dict[str, dict[str, SearchParamDef]] = {}
    for entry in search_parameters():
        if _is_example(entry.get("url")):
            continue
        definition = _from_registry(entry)
        for base in definition.base:
            if base in ("Resource", "DomainResource"):
                common.setdefault(definition.code, definition)
            else:
                by_type.setdefault(base, {}).setdefault(definition.code, definition)
    common.setdefault(_LIST, _LIST_DEF)
    return common, by_type


def params_for(resource_type: str | None) -> dict[str, SearchParamDef]:
    """Every registry parameter of ``resource_type`` (supported or not), by code.

    The Resource-level parameters are included. ``None`` (system-wide search) gives only
    those common to every type. An unknown type gives the Resource-level ones.
    """
    common, by_type = _registry()
    if resource_type is None:
        return dict(common)
    return {**common, **by_type.get(resource_type, {})}


def param_for(resource_type: str | None, code: str) -> SearchParamDef | None:
    """The definition of ``code`` on ``resource_type`` (None: system level), or None."""
    common, by_type = _registry()
    if resource_type is not None:
        found = by_type.get(resource_type, {}).get(code)
        if found is not None:
            return found
    return common.get(code)


@cache
def _supported(resource_type: str | None) -> tuple[SearchParamDef, ...]:
    return tuple(d for _, d in sorted(params_for(resource_type).items()) if d.supported)


def supported_params(resource_type: str | None) -> tuple[SearchParamDef, ...]:
    """Exactly the parameters a search on ``resource_type`` can use, sorted by code.

    This is what the CapabilityStatement advertises (``rest.resource.searchParam``) and
    what the parser accepts; ``None`` gives the system-level (Resource) parameters.
    Unknown resource types give an empty tuple.
    """
    if resource_type is not None and resource_type not in resource_types():
        return ()
    return _supported(resource_type)
