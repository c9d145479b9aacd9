"""A parsed FHIR search — https://hl7.org/fhir/R4/search.html.

:func:`huitong.fhir.search.parse.parse_search` turns a query string into a
:class:`SearchQuery`; the store compiles it to SQL (:mod:`huitong.store.search_sql`). The
model holds no SQL and no I/O, so the same query runs on every engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Chain",
    "Clause",
    "Has",
    "Include",
    "SearchQuery",
    "SortKey",
    "Value",
]

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]


@dataclass(frozen=True, slots=True)
class Value:
    """One value of a parameter (one item of a comma-separated OR list).

    ``prefix`` is set for ordered types (number, date, quantity) and defaults to ``eq``;
    ``text`` is the value with the prefix removed and ``\\,`` ``\\|`` ``\\$`` unescaped.
    For composite parameters ``parts`` holds the ``$``-separated component values.
    """

    text: str
    prefix: Prefix = "eq"
    parts: tuple[Value, ...] = ()


@dataclass(frozen=True, slots=True)
class Chain:
    """``subject:Patient.name=x``: match resources whose reference points at a resource
    (of ``target_type``, or any allowed target) that matches ``clause``."""

    target_types: tuple[str, ...]
    clause: Clause


@dataclass(frozen=True, slots=True)
class Has:
    """``_has:Observation:patient:code=x``: reverse chain."""

    source_type: str
    reference_param: str
    clause: Clause


@dataclass(frozen=True, slots=True)
class Clause:
    """One parameter occurrence: the OR of its values. A query ANDs its clauses.

    ``param`` is the parameter code (``code``, ``_id``, ``_lastUpdated``); ``type`` its search
    type (string, token, reference, date, number, quantity, uri, composite, special);
    ``modifier`` is ``exact``/``contains``/``missing``/``not``/``text``/``identifier``/
    ``of-type``/``above``/``below``/``in``/``not-in`` or a resource type on references.
    ``resource_types`` are the types the clause applies to (several for system search).
    """

    param: str
    type: str
    values: tuple[Value, ...]
    modifier: str | None = None
    resource_types: tuple[str, ...] = ()
    chain: Chain | None = None
    has: Has | None = None
    # composite: the component parameter types, in order
    components: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SortKey:
    param: str
    type: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Include:
    """``_include=Type:param[:target]`` or ``_revinclude=...``, optionally ``:iterate``."""

    source_type: str  # "*" for _include=*
    param: str  # "*" for all reference parameters
    target_type: str | None = None
    iterate: bool = False


@dataclass(slots=True)
class SearchQuery:
    """Everything a search asks for. ``resource_types`` is empty for a system-wide search."""

    resource_types: tuple[str, ...]
    clauses: list[Clause] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = 20
    offset: int = 0
    total: Literal["none", "estimate", "accurate"] = "accurate"
    include: list[Include] = field(default_factory=list)
    revinclude: list[Include] = field(default_factory=list)
    summary: str | None = None  # true | text | data | count | false
    elements: list[str] | None = None
    # Patient/123/Observation: (compartment type, compartment id)
    compartment: tuple[str, str] | None = None
    contained: str | None = None
    # parameters accepted by Prefer: handling=lenient but not understood, for the self link
    ignored: list[str] = field(default_factory=list)
    # the parameters that were applied, for the self and paging links (name, value)
    applied: list[tuple[str, str]] = field(default_factory=list)
