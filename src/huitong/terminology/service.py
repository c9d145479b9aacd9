"""The terminology service: operation input in, FHIR answer out.

:class:`Terminology` resolves canonical URLs through a :class:`TerminologySource`, keeps
compiled indexes and concept maps cached per version, reads each operation's parameters
(query pairs or a ``Parameters`` body, as the server passes them) and calls the pure
operation modules. Instance-level calls (``CodeSystem/{id}/$lookup``) pass the resource.
Failure contract: NOT_FOUND for an unknown code system, value set or concept map; INVALID
for missing, conflicting or mistyped parameters; the operation modules add their own.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from huitong.clock import Clock, IdFactory, MonotonicClock, new_uuid
from huitong.fhir.errors import Category
from huitong.terminology._cache import IndexCache
from huitong.terminology._inputs import Inputs
from huitong.terminology._messages import error
from huitong.terminology.expand import ExpandRequest, expand
from huitong.terminology.index import CodeSystemIndex
from huitong.terminology.lookup import lookup
from huitong.terminology.source import TerminologySource
from huitong.terminology.subsumes import subsumes
from huitong.terminology.translate import (
    CompiledConceptMap,
    Dependency,
    Translation,
    compile_concept_map,
    translate,
    translation_parameters,
)
from huitong.terminology.validate_code import (
    Validation,
    combine,
    validate_in_system,
    validate_in_value_set,
    validation_parameters,
)

__all__ = ["OPERATION_DEFINITIONS", "Terminology"]

RawInputs = Inputs | dict[str, Any] | list[tuple[str, Any]] | None


# (name, resource type, levels, canonical OperationDefinition): what the server routes.
OPERATION_DEFINITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("lookup", "CodeSystem", "type instance",
     "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup"),
    ("validate-code", "CodeSystem", "type instance",
     "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code"),
    ("subsumes", "CodeSystem", "type instance",
     "http://hl7.org/fhir/OperationDefinition/CodeSystem-subsumes"),
    ("expand", "ValueSet", "type instance",
     "http://hl7.org/fhir/OperationDefinition/ValueSet-expand"),
    ("validate-code", "ValueSet", "type instance",
     "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code"),
    ("translate", "ConceptMap", "type instance",
     "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate"),
)


def _ver(version: str | None) -> str:
    return f" (version {version})" if version else ""


def _iso(micros: int) -> str:
    return dt.datetime.fromtimestamp(micros / 1e6, dt.UTC).isoformat(timespec="seconds")


class Terminology:
    """Terminology operations over one source. Thread-safe; one per process is enough."""

    def __init__(
        self, source: TerminologySource, *, clock: Clock | None = None,
        new_id: IdFactory | None = None, max_expansion: int = 10_000,
        cache: IndexCache | None = None,
    ) -> None:
        self.source = source
        self._clock = clock or MonotonicClock()
        self._new_id = new_id or new_uuid
        self._max_expansion = max_expansion
        self._indexes = cache or IndexCache()
        self._maps: dict[tuple[Any, ...], CompiledConceptMap] = {}
        self._maps_lock = threading.Lock()

    # -- resolution (the compose.Resolver protocol) ------------------------------------------

    def find_code_system_index(
        self, url: str, version: str | None = None
    ) -> CodeSystemIndex | None:
        resource = self.source.code_system(url, version)
        if resource is None:
            return None
        return self._indexes.index(resource)

    def code_system_index(self, url: str, version: str | None = None) -> CodeSystemIndex:
        index = self.find_code_system_index(url, version)
        if index is None:
            raise error(Category.NOT_FOUND, "unknown-cs", url=url, ver=_ver(version))
        return index

    def index_of(self, code_system: dict[str, Any]) -> CodeSystemIndex:
        """The compiled index of a CodeSystem resource at hand (instance-level operations)."""
        return self._indexes.index(code_system)

    def value_set_resource(self, url: str, version: str | None = None) -> dict[str, Any]:
        vs = self.source.value_set(url, version)
        if vs is None:
            raise error(Category.NOT_FOUND, "unknown-vs", url=url, ver=_ver(version))
        return vs

    def compiled_map(self, concept_map: dict[str, Any]) -> CompiledConceptMap:
        meta = concept_map.get("meta") or {}
        groups = concept_map.get("group") or []
        key = (concept_map.get("url"), concept_map.get("version"), meta.get("versionId"),
               meta.get("lastUpdated"), len(groups),
               sum(len(g.get("element") or ()) for g in groups))
        with self._maps_lock:
            found = self._maps.get(key)
        if found is None:
            found = compile_concept_map(concept_map)
            with self._maps_lock:
                if len(self._maps) > 256:
                    self._maps.clear()
                self._maps[key] = found
        return found

    # -- operations ---------------------------------------------------------------------------

    def _system_index(self, p: Inputs, code_system: dict[str, Any] | None,
                      system: str | None, version: str | None) -> CodeSystemIndex:
        if code_system is not None:
            return self.index_of(code_system)
        if not system:
            raise error(Category.INVALID, "missing-param", name="system")
        return self.code_system_index(system, version)

    def lookup(self, inputs: RawInputs, *, code_system: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """``$lookup``: code + system (+ version), or coding."""
        p = Inputs.of(inputs)
        code, system, version = p.str_("code"), p.str_("system"), p.str_("version")
        coding = p.coding("coding")
        if coding is not None:
            if code is not None:
                raise error(Category.INVALID, "one-of", names="code, coding")
            code, system = coding.get("code"), coding.get("system") or system
            version = coding.get("version") or version
        if not code:
            raise error(Category.INVALID, "missing-param", name="code")
        index = self._system_index(p, code_system, system, version)
        return lookup(index, code, display_language=p.str_("displayLanguage"),
                      properties=p.strings("property"))

    def validate_code(self, inputs: RawInputs, *, code_system: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
        """CodeSystem ``$validate-code``: code, coding or codeableConcept against one system."""
        p = Inputs.of(inputs)
        url = p.str_("url")
        resource = code_system or p.resource("codeSystem", "CodeSystem")
        codings = self._codings(p, default_system=url or (resource or {}).get("url"))
        version = p.str_("version")
        results: list[Validation] = []
        for c in codings:
            system = c.get("system")
            if resource is not None:
                index = self.index_of(resource)
            else:
                index = self.code_system_index(url or system or "", c.get("version") or version)
            results.append(validate_in_system(
                index, c.get("code", ""), system=system, display=c.get("display"),
                display_language=p.str_("displayLanguage"),
                abstract_ok=p.bool_("abstract"),
            ))
        return validation_parameters(combine(results))

    def validate_code_in_value_set(
        self, inputs: RawInputs, *, value_set: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """ValueSet ``$validate-code``: code + system, coding or codeableConcept."""
        p = Inputs.of(inputs)
        vs = self._value_set(p, value_set)
        codings = self._codings(p, default_system=None)
        results = []
        for c in codings:
            system = c.get("system")
            if not system:
                raise error(Category.INVALID, "missing-param", name="system")
            results.append(validate_in_value_set(
                vs, self, system, c.get("code", ""),
                version=c.get("version") or p.str_("systemVersion"), display=c.get("display"),
                display_language=p.str_("displayLanguage"), abstract_ok=p.bool_("abstract"),
            ))
        return validation_parameters(combine(results))

    def expand(self, inputs: RawInputs, *, value_set: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """``$expand`` with filter, paging, displayLanguage and designations."""
        p = Inputs.of(inputs)
        vs = self._value_set(p, value_set)
        pins: list[tuple[str, str]] = []
        for name in ("system-version", "force-system-version"):
            for canonical in p.strings(name):
                system, _, ver = canonical.partition("|")
                if ver:
                    pins.append((system, ver))
        request = ExpandRequest(
            filter=p.str_("filter"), offset=p.int_("offset") or 0, count=p.int_("count"),
            display_language=p.str_("displayLanguage"),
            include_designations=p.bool_("includeDesignations") or bool(p.all("designation")),
            designations=tuple(p.strings("designation")),
            active_only=p.bool_("activeOnly"), system_versions=tuple(pins),
        )
        return expand(vs, self, request, timestamp=_iso(self._clock()),
                      identifier=f"urn:uuid:{self._new_id()}", max_size=self._max_expansion)

    def translate(self, inputs: RawInputs, *, concept_map: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
        """``$translate``: code + system, coding or codeableConcept, forward or reverse."""
        p = Inputs.of(inputs)
        url = p.str_("url")
        resource = concept_map or p.resource("conceptMap", "ConceptMap")
        source_vs, target_vs = p.str_("source"), p.str_("target")
        if resource is not None:
            maps = [self.compiled_map(resource)]
        else:
            candidates = self.source.concept_maps(source_vs, target_vs)
            if url:
                version = p.str_("conceptMapVersion")
                candidates = [cm for cm in candidates if cm.get("url") == url
                              and (version is None or cm.get("version") == version)]
                if not candidates:
                    raise error(Category.NOT_FOUND, "unknown-cm", url=url)
            maps = [self.compiled_map(cm) for cm in candidates]
        codings = self._codings(p, default_system=None)
        deps = []
        for part in p.parts("dependency"):
            concept = part.get("concept") or {}
            for c in concept.get("coding") or []:
                deps.append(Dependency(str(part.get("element", "")), c.get("system"),
                                       c.get("code", "")))
        def other(u: str) -> CompiledConceptMap | None:
            # ConceptMap.group.unmapped mode other-map: only then do we look further afield.
            found = next((cm for cm in self.source.concept_maps(None, None)
                          if cm.get("url") == u), None)
            return self.compiled_map(found) if found else None

        results = [
            translate(maps, c.get("system"), c.get("code", ""),
                      target_system=p.str_("targetsystem"), reverse=p.bool_("reverse"),
                      dependencies=deps, other_map=other)
            for c in codings
        ]
        if len(results) == 1:
            return translation_parameters(results[0])
        first_ok = next((r for r in results if r.result), results[0])
        merged = Translation(tuple(m for r in results for m in r.matches), first_ok.message)
        return translation_parameters(merged)

    def subsumes(self, inputs: RawInputs, *, code_system: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
        """``$subsumes``: codeA + codeB (+ system), or codingA + codingB."""
        p = Inputs.of(inputs)
        system, version = p.str_("system"), p.str_("version")
        a, b = p.str_("codeA"), p.str_("codeB")
        ca, cb = p.coding("codingA"), p.coding("codingB")
        if ca is not None:
            a, system = ca.get("code"), ca.get("system") or system
        if cb is not None:
            b = cb.get("code")
            sb = cb.get("system")
            if sb and system and sb != system:
                raise error(Category.INVALID, "different-systems", a=system, b=sb)
            system = system or sb
        for name, value in (("codeA", a), ("codeB", b)):
            if not value:
                raise error(Category.INVALID, "missing-param", name=name)
        index = self._system_index(p, code_system, system, version)
        return subsumes(index, str(a), str(b))

    # -- helpers -----------------------------------------------------------------------------

    def _value_set(self, p: Inputs, value_set: dict[str, Any] | None) -> dict[str, Any]:
        if value_set is not None:
            return value_set
        inline = p.resource("valueSet", "ValueSet")
        if inline is not None:
            return inline
        url = p.str_("url")
        if not url:
            raise error(Category.INVALID, "missing-param", name="url")
        return self.value_set_resource(url, p.str_("valueSetVersion"))

    @staticmethod
    def _codings(p: Inputs, *, default_system: str | None) -> list[dict[str, Any]]:
        code = p.str_("code")
        coding = p.coding("coding")
        concept = p.codeable_concept("codeableConcept")
        given = [x for x in (code, coding, concept) if x is not None]
        if len(given) > 1:
            raise error(Category.INVALID, "one-of", names="code, coding, codeableConcept")
        if code is not None:
            c: dict[str, Any] = {"code": code, "system": p.str_("system") or default_system}
            if p.str_("display"):
                c["display"] = p.str_("display")
            return [c]
        if coding is not None:
            return [coding]
        if concept is not None and concept.get("coding"):
            return list(concept["coding"])
        raise error(Category.INVALID, "no-coding")
