"""Translation on ingest: every coded element gets its standard coding beside the original,
and every measured Quantity its preferred UCUM unit, with nothing overwritten.

For each CodeableConcept (https://hl7.org/fhir/R4/datatypes.html#CodeableConcept) whose
codings come from a local system, the translations found in the channel's ConceptMaps are
appended after the original codings with ``userSelected: false`` (the sender chose the
original; the platform added the rest). A lone Coding element (``Encounter.class``) holds one
coding only, so its translation is reported, not placed. A local coding with no usable
translation is reported as unmapped, for the unmapped-codes queue. An Observation's (or
component's) ``valueQuantity`` and reference range are converted to the preferred unit of
the test named by its LOINC code, the original kept in an extension
(:data:`~huitong.terminology.units.quantity.ORIGINAL_QUANTITY_URL`). The input resource is
never modified; it is copied only when something changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from huitong.terminology.translate import CompiledConceptMap, Match, compile_concept_map
from huitong.terminology.translate import translate as translate_code
from huitong.terminology.units.quantity import normalise_quantity

__all__ = [
    "STANDARD_SYSTEMS", "AddedCoding", "CodeMaps", "MapSet", "NormalisedQuantity",
    "TranslationResult", "UnmappedCoding", "loinc_code_of", "translate_resource",
]

LOINC = "http://loinc.org"

# Systems that are already standard: their codings are never "unmapped". Prefix match, so
# every http://terminology.hl7.org/CodeSystem/... and http://hl7.org/fhir/... system counts.
STANDARD_SYSTEMS: tuple[str, ...] = (
    "http://loinc.org", "http://snomed.info/sct", "http://hl7.org/fhir/sid/",
    "http://www.nlm.nih.gov/research/umls/rxnorm", "http://www.whocc.no/atc",
    "http://id.who.int/icd/", "http://unitsofmeasure.org", "http://terminology.hl7.org/",
    "http://hl7.org/fhir/", "urn:ietf:bcp:47", "urn:iso:std:iso:3166", "http://dicom.nema.org/",
    "http://huitong.example/fhir/CodeSystem/icd-",
)

_SKIP = frozenset({"meta", "text"})
_FAILED = frozenset({"unmatched", "disjoint"})
Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class AddedCoding:
    path: str  # FHIRPath-like location of the CodeableConcept
    source_system: str | None
    source_code: str
    coding: dict[str, Any]
    equivalence: str
    concept_map: str | None


@dataclass(frozen=True, slots=True)
class UnmappedCoding:
    path: str
    system: str | None
    code: str | None
    display: str | None


@dataclass(frozen=True, slots=True)
class NormalisedQuantity:
    path: str
    original: dict[str, Any]
    normalised: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TranslationResult:
    resource: dict[str, Any]  # the input itself when nothing changed
    added: tuple[AddedCoding, ...] = ()
    unmapped: tuple[UnmappedCoding, ...] = ()
    quantities: tuple[NormalisedQuantity, ...] = ()
    not_placed: tuple[AddedCoding, ...] = ()  # translations of lone Coding elements

    @property
    def changed(self) -> bool:
        return bool(self.added or self.quantities)


class CodeMaps(Protocol):
    """What the walk asks of a set of maps (a :class:`MapSet`, or the write path's maps of
    one institution layered over the region's)."""

    def is_standard(self, system: str | None) -> bool: ...

    def targets(self, system: str | None, code: str) -> tuple[Match, ...]: ...


class MapSet:
    """A channel's ConceptMaps, compiled once, with answers memoised per code."""

    def __init__(self, concept_maps: Iterable[dict[str, Any] | CompiledConceptMap] = (),
                 *, standard_systems: Sequence[str] = STANDARD_SYSTEMS) -> None:
        self.maps = [m if isinstance(m, CompiledConceptMap) else compile_concept_map(m)
                     for m in concept_maps]
        self.standard_systems = tuple(standard_systems)
        self._memo: dict[tuple[str | None, str], tuple[Match, ...]] = {}

    def is_standard(self, system: str | None) -> bool:
        return bool(system) and str(system).startswith(self.standard_systems)

    def targets(self, system: str | None, code: str) -> tuple[Match, ...]:
        key = (system, code)
        found = self._memo.get(key)
        if found is None:
            result = translate_code(self.maps, system, code)
            found = tuple(m for m in result.matches
                          if m.equivalence not in _FAILED and m.code is not None)
            self._memo[key] = found
        return found


def _render(resource_type: str, path: Path) -> str:
    out = resource_type
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def loinc_code_of(concept: Any) -> str | None:
    """The LOINC code of a CodeableConcept (the analyte a quantity measures), if any."""
    if not isinstance(concept, dict):
        return None
    for c in concept.get("coding") or []:
        if isinstance(c, dict) and c.get("system") == LOINC and c.get("code"):
            return str(c["code"])
    return None


@dataclass(slots=True)
class _Walk:
    maps: CodeMaps
    units: bool
    resource_type: str
    added: list[AddedCoding] = field(default_factory=list)
    unmapped: list[UnmappedCoding] = field(default_factory=list)
    quantities: list[NormalisedQuantity] = field(default_factory=list)
    not_placed: list[AddedCoding] = field(default_factory=list)
    edits: list[tuple[Path, str, Any]] = field(default_factory=list)
    new_codings: dict[Path, list[dict[str, Any]]] = field(default_factory=dict)

    def coding_targets(self, coding: dict[str, Any], path: Path) -> list[AddedCoding]:
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(code, str) or self.maps.is_standard(system):
            return []
        matches = self.maps.targets(system, code)
        if not matches:
            self.unmapped.append(UnmappedCoding(_render(self.resource_type, path), system, code,
                                                coding.get("display")))
            return []
        out = []
        for m in matches:
            new = m.coding()
            new["userSelected"] = False
            out.append(AddedCoding(_render(self.resource_type, path), system, code, new,
                                   m.equivalence, m.source))
        return out

    def concept(self, cc: dict[str, Any], path: Path) -> None:
        codings = cc.get("coding")
        if not isinstance(codings, list):
            return
        present = {(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)}
        new: list[dict[str, Any]] = []
        for i, c in enumerate(codings):
            if not isinstance(c, dict):
                continue
            for added in self.coding_targets(c, (*path, "coding", i)):
                key = (added.coding.get("system"), added.coding.get("code"))
                if key in present:
                    continue
                present.add(key)
                new.append(added.coding)
                self.added.append(added)
        if new:
            self.edits.append(((*path, "coding"), "extend", new))
            self.new_codings[path] = new

    def quantity(self, node: dict[str, Any], path: Path) -> None:
        # A local test code translated to LOINC a moment ago names the analyte too.
        loinc = loinc_code_of(node.get("code")) or loinc_code_of(
            {"coding": self.new_codings.get((*path, "code"), [])})
        vq = node.get("valueQuantity")
        if isinstance(vq, dict):
            self._normalise(vq, (*path, "valueQuantity"), loinc)
        for i, rr in enumerate(node.get("referenceRange") or []):
            if isinstance(rr, dict):
                for end in ("low", "high"):
                    if isinstance(rr.get(end), dict):
                        self._normalise(rr[end], (*path, "referenceRange", i, end), loinc)

    def _normalise(self, q: dict[str, Any], path: Path, loinc: str | None) -> None:
        done = normalise_quantity(q, loinc_code=loinc)
        if done is not None:
            self.quantities.append(NormalisedQuantity(_render(self.resource_type, path), q, done))
            self.edits.append((path, "replace", done))

    def node(self, value: Any, path: Path) -> None:
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.node(item, (*path, i))
            return
        if not isinstance(value, dict):
            return
        if isinstance(value.get("coding"), list):
            self.concept(value, path)
        elif ("code" in value and "system" in value and "value" not in value and path
              and not isinstance(path[-1], int)):  # a lone Coding element: Encounter.class
            self.not_placed += self.coding_targets(value, path)
        for key, child in value.items():
            if key in _SKIP or key == "coding" or not isinstance(child, dict | list):
                continue
            self.node(child, (*path, key))
        if self.units and ("valueQuantity" in value or "referenceRange" in value):
            self.quantity(value, path)  # after the children, so ``code`` is translated


def _apply(resource: dict[str, Any], edits: list[tuple[Path, str, Any]]) -> dict[str, Any]:
    out = orjson.loads(orjson.dumps(resource))  # a deep copy, several times faster
    for path, kind, value in edits:
        parent: Any = out
        for step in path[:-1]:
            parent = parent[step]
        if kind == "extend":
            parent[path[-1]].extend(value)
        else:
            parent[path[-1]] = value
    return out


def translate_resource(
    resource: dict[str, Any], maps: CodeMaps | Sequence[dict[str, Any]], *,
    normalise_units: bool = True,
) -> TranslationResult:
    """Translate every coded element of ``resource`` through ``maps`` and normalise its
    measured quantities. Returns a new resource (or the same one, unchanged) and what was
    done; the input is never modified."""
    mapset = MapSet(maps) if isinstance(maps, Sequence) else maps
    walk = _Walk(mapset, normalise_units, str(resource.get("resourceType", "Resource")))
    walk.node(resource, ())
    result = _apply(resource, walk.edits) if walk.edits else resource
    return TranslationResult(result, tuple(walk.added), tuple(walk.unmapped),
                             tuple(walk.quantities), tuple(walk.not_placed))
