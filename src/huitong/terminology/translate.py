"""ConceptMap ``$translate`` — https://hl7.org/fhir/R4/conceptmap-operation-translate.html.

A ConceptMap (https://hl7.org/fhir/R4/conceptmap.html) is compiled once into a lookup from
``(source system, code)`` to its targets (and the reverse), so translating one code costs a
dict lookup. ``result`` is true when at least one match has an equivalence other than
``unmatched`` or ``disjoint``. Each ``match`` carries ``equivalence``, ``concept`` (a Coding)
and ``source`` (the ConceptMap's url).

Choices the spec leaves open, made here:
- ``group.unmapped`` applies only to codes with no element in the group: ``provided`` maps a
  code to itself (equivalence ``equal``), ``fixed`` to the given code (``inexact``: it is a
  catch-all), ``other-map`` continues in the ConceptMap at ``unmapped.url``.
- a target with ``dependsOn`` applies only when every dependency is supplied and agrees.
- ``reverse`` returns source codes, with ``wider``/``narrower`` and
  ``subsumes``/``specializes`` swapped, since the relationship is read the other way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from huitong.terminology._messages import Message, message
from huitong.terminology._parameters import ParametersBuilder

__all__ = [
    "CompiledConceptMap", "Dependency", "Match", "Translation", "compile_concept_map",
    "translate", "translation_parameters",
]

_FAILED = frozenset({"unmatched", "disjoint"})
_REVERSED = {
    "wider": "narrower", "narrower": "wider", "subsumes": "specializes",
    "specializes": "subsumes",
}


@dataclass(frozen=True, slots=True)
class Dependency:
    """A ``dependency`` input: the element (a uri) and the code it has."""

    element: str
    system: str | None
    code: str


@dataclass(frozen=True, slots=True)
class Match:
    equivalence: str
    system: str | None
    code: str | None
    display: str | None
    version: str | None
    source: str | None  # the ConceptMap url
    depends_on: tuple[tuple[str, str | None, str], ...] = ()

    def coding(self) -> dict[str, Any]:
        c: dict[str, Any] = {}
        for key, value in (("system", self.system), ("version", self.version),
                           ("code", self.code), ("display", self.display)):
            if value is not None:
                c[key] = value
        return c


@dataclass(slots=True)
class _Group:
    source: str | None
    target: str | None
    target_version: str | None
    unmapped: dict[str, Any] | None


@dataclass(slots=True)
class CompiledConceptMap:
    url: str | None
    version: str | None
    source_scope: str | None
    target_scope: str | None
    forward: dict[tuple[str | None, str], list[Match]] = field(default_factory=dict)
    backward: dict[tuple[str | None, str], list[Match]] = field(default_factory=dict)
    groups: list[_Group] = field(default_factory=list)

    @property
    def source_systems(self) -> set[str]:
        return {g.source for g in self.groups if g.source}


def compile_concept_map(concept_map: dict[str, Any]) -> CompiledConceptMap:
    cm = CompiledConceptMap(
        concept_map.get("url"), concept_map.get("version"),
        concept_map.get("sourceUri") or concept_map.get("sourceCanonical"),
        concept_map.get("targetUri") or concept_map.get("targetCanonical"),
    )
    for group in concept_map.get("group") or []:
        source, target = group.get("source"), group.get("target")
        cm.groups.append(_Group(source, target, group.get("targetVersion"),
                                group.get("unmapped")))
        for element in group.get("element") or []:
            code = element.get("code")
            if not code:
                continue
            targets = element.get("target") or [{"equivalence": "unmatched"}]
            for t in targets:
                deps = tuple(
                    (d.get("property", ""), d.get("system"), d.get("value", ""))
                    for d in t.get("dependsOn") or []
                )
                eq = t.get("equivalence", "equivalent")
                cm.forward.setdefault((source, code), []).append(Match(
                    eq, target if t.get("code") else None, t.get("code"), t.get("display"),
                    group.get("targetVersion") if t.get("code") else None, cm.url, deps,
                ))
                if t.get("code") and eq not in _FAILED:
                    cm.backward.setdefault((target, t["code"]), []).append(Match(
                        _REVERSED.get(eq, eq), source, code, element.get("display"),
                        group.get("sourceVersion"), cm.url, deps,
                    ))
    return cm


@dataclass(frozen=True, slots=True)
class Translation:
    matches: tuple[Match, ...]
    message: Message

    @property
    def result(self) -> bool:
        return any(m.equivalence not in _FAILED for m in self.matches)


def _deps_hold(match: Match, supplied: Sequence[Dependency]) -> bool:
    return all(
        any(d.element == prop and d.code == value and (system is None or d.system in (None,
            system)) for d in supplied)
        for prop, system, value in match.depends_on
    )


def _forward(
    cm: CompiledConceptMap, system: str | None, code: str, target_system: str | None,
    dependencies: Sequence[Dependency], other_map: Callable[[str], CompiledConceptMap | None],
    depth: int,
) -> list[Match]:
    found = [
        m for m in cm.forward.get((system, code), [])
        if (target_system is None or m.system in (None, target_system))
        and _deps_hold(m, dependencies)
    ]
    if found or (system, code) in cm.forward:
        return found
    out: list[Match] = []
    for g in cm.groups:
        if g.source != system or not g.unmapped or (target_system not in (None, g.target)):
            continue
        mode = g.unmapped.get("mode")
        if mode == "provided":
            out.append(Match("equal", g.target, code, None, g.target_version, cm.url))
        elif mode == "fixed" and g.unmapped.get("code"):
            out.append(Match("inexact", g.target, g.unmapped["code"], g.unmapped.get("display"),
                             g.target_version, cm.url))
        elif mode == "other-map" and g.unmapped.get("url") and depth < 8:
            other = other_map(g.unmapped["url"])
            if other is not None:
                out += _forward(other, system, code, target_system, dependencies, other_map,
                                depth + 1)
    return out


def translate(
    maps: Sequence[CompiledConceptMap], system: str | None, code: str, *,
    target_system: str | None = None, reverse: bool = False,
    dependencies: Sequence[Dependency] = (),
    other_map: Callable[[str], CompiledConceptMap | None] = lambda url: None,
) -> Translation:
    """Every match for ``(system, code)`` across ``maps``, in map and element order."""
    matches: list[Match] = []
    for cm in maps:
        if reverse:
            matches += [
                m for m in cm.backward.get((system, code), [])
                if (target_system is None or m.system == target_system)
                and _deps_hold(m, dependencies)
            ]
        else:
            matches += _forward(cm, system, code, target_system, dependencies, other_map, 0)
    shown = system or ""
    good = [m for m in matches if m.equivalence not in _FAILED]
    text = (message("translated", count=len(good), code=code, system=shown) if good
            else message("no-translation", code=code, system=shown))
    return Translation(tuple(matches), text)


def translation_parameters(translation: Translation) -> dict[str, Any]:
    out = ParametersBuilder()
    out.add("result", translation.result, "boolean")
    out.add("message", translation.message.text, "string")
    for m in translation.matches:
        parts = [ParametersBuilder.part("equivalence", m.equivalence, "code")]
        if m.code is not None:
            parts.append(ParametersBuilder.part("concept", m.coding(), "Coding"))
        if m.source:
            parts.append(ParametersBuilder.part("source", m.source, "uri"))
        out.add_parts("match", parts)
    return out.build()
