"""What a ValueSet contains — https://hl7.org/fhir/R4/valueset.html#compositions.

Two questions, answered without side effects: :func:`enumerate_value_set` lists every member
(for ``$expand``) and :func:`find_in_value_set` decides whether one code is a member (for
``$validate-code``) without enumerating anything. Includes are unions; within one include,
the system part and each referenced value set intersect; excludes subtract. A ValueSet with
no ``compose`` but an ``expansion`` is taken as its expansion. Failure contract: NOT_FOUND
for a referenced code system or value set we do not have (except that listed codes from an
unknown system are still members, with the display the ValueSet gives), INVALID when a value
set includes itself.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from huitong.fhir.errors import Category
from huitong.terminology._messages import error
from huitong.terminology.filters import compile_filter, select
from huitong.terminology.index import CodeSystemIndex, Concept

__all__ = ["Member", "Resolver", "enumerate_value_set", "find_in_value_set"]


class Resolver(Protocol):
    def code_system_index(self, url: str, version: str | None = None) -> CodeSystemIndex:
        """The compiled system; raises NOT_FOUND when unknown."""
        ...

    def find_code_system_index(
        self, url: str, version: str | None = None
    ) -> CodeSystemIndex | None: ...

    def value_set_resource(self, url: str, version: str | None = None) -> dict[str, Any]:
        """The ValueSet; raises NOT_FOUND when unknown."""
        ...


class Member(NamedTuple):
    system: str
    version: str | None
    code: str
    display: str | None  # the ValueSet's own display when it gives one, else the concept's
    concept: Concept | None  # None for a listed code from a system we do not hold
    index: CodeSystemIndex | None


def _member(index: CodeSystemIndex, concept: Concept, display: str | None = None) -> Member:
    return Member(index.url, index.version, concept.code, display or concept.display, concept,
                  index)


def _system_part(
    include: dict[str, Any], resolver: Resolver, system_versions: dict[str, str]
) -> list[Member] | None:
    system = include.get("system")
    if not system:
        return None
    version = include.get("version") or system_versions.get(system)
    listed = include.get("concept") or []
    if listed:
        index = resolver.find_code_system_index(system, version)
        out: list[Member] = []
        for item in listed:
            code = item.get("code")
            if not code:
                continue
            if index is None:
                out.append(Member(system, version, code, item.get("display"), None, None))
                continue
            concept = index.get(code)
            if concept is not None:
                out.append(_member(index, concept, item.get("display")))
        return out
    index = resolver.code_system_index(system, version)
    filters = [compile_filter(index, f) for f in include.get("filter") or []]
    return [_member(index, c) for c in select(index, filters)]


def _set_part(
    include: dict[str, Any], resolver: Resolver, seen: frozenset[str],
    system_versions: dict[str, str],
) -> list[Member]:
    result: list[Member] | None = _system_part(include, resolver, system_versions)
    for ref in include.get("valueSet") or []:
        url, _, ver = ref.partition("|")
        if url in seen:
            raise error(Category.INVALID, "vs-cycle", url=url)
        vs = resolver.value_set_resource(url, ver or None)
        members = enumerate_value_set(vs, resolver, _seen=seen, system_versions=system_versions)
        if result is None:
            result = members
        else:
            keep = {(m.system, m.code) for m in members}
            result = [m for m in result if (m.system, m.code) in keep]
    return result or []


def enumerate_value_set(
    value_set: dict[str, Any], resolver: Resolver, *, active_only: bool = False,
    system_versions: dict[str, str] | None = None, _seen: frozenset[str] = frozenset(),
) -> list[Member]:
    """Every member of ``value_set`` in definition order, each (system, code) once.
    ``system_versions`` pins the version used for a system the compose leaves unversioned
    (the ``system-version`` parameter of ``$expand``)."""
    seen = _seen | {value_set.get("url", "")}
    versions = system_versions or {}
    compose = value_set.get("compose")
    if not compose:
        return _from_expansion(value_set, resolver)
    members: list[Member] = []
    keys: set[tuple[str, str]] = set()
    for include in compose.get("include") or []:
        for m in _set_part(include, resolver, seen, versions):
            if (m.system, m.code) not in keys:
                keys.add((m.system, m.code))
                members.append(m)
    excluded: set[tuple[str, str]] = set()
    for exclude in compose.get("exclude") or []:
        excluded |= {(m.system, m.code) for m in _set_part(exclude, resolver, seen, versions)}
    inactive_ok = compose.get("inactive", True) and not active_only
    return [
        m for m in members
        if (m.system, m.code) not in excluded
        and (inactive_ok or m.concept is None or not m.concept.inactive)
    ]


def _from_expansion(value_set: dict[str, Any], resolver: Resolver) -> list[Member]:
    out: list[Member] = []
    stack = list(reversed((value_set.get("expansion") or {}).get("contains") or []))
    while stack:
        item = stack.pop()
        stack.extend(reversed(item.get("contains") or []))
        system, code = item.get("system"), item.get("code")
        if not system or not code:
            continue
        index = resolver.find_code_system_index(system, item.get("version"))
        concept = index.get(code) if index else None
        out.append(Member(system, item.get("version"), code, item.get("display"), concept,
                          index))
    return out


def _include_has(
    include: dict[str, Any], system: str, code: str, resolver: Resolver, seen: frozenset[str],
    system_versions: dict[str, str],
) -> Member | None:
    found: Member | None = None
    if include.get("system"):
        if include["system"] != system:
            return None
        version = include.get("version") or system_versions.get(system)
        listed = include.get("concept") or []
        index = resolver.find_code_system_index(system, version)
        if listed:
            item = next((i for i in listed if i.get("code") == code), None)
            if item is None and index is not None and not index.case_sensitive:
                item = next((i for i in listed if str(i.get("code", "")).casefold()
                             == code.casefold()), None)
            if item is None:
                return None
            if index is None:
                found = Member(system, version, item["code"], item.get("display"), None, None)
            else:
                concept = index.get(item["code"])
                if concept is None:
                    return None
                found = _member(index, concept, item.get("display"))
        else:
            if index is None:
                index = resolver.code_system_index(system, version)  # raises NOT_FOUND
            concept = index.get(code)
            if concept is None:
                return None
            filters = [compile_filter(index, f) for f in include.get("filter") or []]
            if not all(f.test(concept) for f in filters):
                return None
            found = _member(index, concept)
    for ref in include.get("valueSet") or []:
        url, _, ver = ref.partition("|")
        if url in seen:
            raise error(Category.INVALID, "vs-cycle", url=url)
        vs = resolver.value_set_resource(url, ver or None)
        inner = find_in_value_set(vs, system, code, resolver, _seen=seen,
                                  system_versions=system_versions)
        if inner is None:
            return None
        found = found or inner
    return found


def find_in_value_set(
    value_set: dict[str, Any], system: str, code: str, resolver: Resolver, *,
    system_versions: dict[str, str] | None = None, _seen: frozenset[str] = frozenset(),
) -> Member | None:
    """The member ``(system, code)`` of ``value_set``, or None when it is not a member."""
    seen = _seen | {value_set.get("url", "")}
    versions = system_versions or {}
    compose = value_set.get("compose")
    if not compose:
        return next((m for m in _from_expansion(value_set, resolver)
                     if m.system == system and m.code == code), None)
    found: Member | None = None
    for include in compose.get("include") or []:
        found = _include_has(include, system, code, resolver, seen, versions)
        if found is not None:
            break
    if found is None:
        return None
    for exclude in compose.get("exclude") or []:
        if _include_has(exclude, system, found.code, resolver, seen, versions) is not None:
            return None
    if compose.get("inactive", True) is False and found.concept and found.concept.inactive:
        return None
    return found

