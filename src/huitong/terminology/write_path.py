"""Translation on the one write path: every source is normalised the same way.

:meth:`TranslationService.install` registers, on the repository:

- a write *transform* (run after stamping, before validation and indexing): every local
  coding a ConceptMap maps gets its standard coding appended beside it (``userSelected:
  false``; the original is never changed), and measured quantities are converted to the
  preferred UCUM unit with the original kept in an extension (:mod:`.ingest` does the pure
  part). The added codings are then validated, indexed and searchable like any other;
- a write *hook* on ConceptMap (a changed map is picked up by the next write) and on
  Patient/Encounter (their institution, remembered for the rest of the transaction);
- a *commit hook* writing the transaction's unmapped local codes to the queue
  (``terminology_unmapped``) in one statement.

Which maps apply: the institution's own ingest ConceptMaps first, then the region-wide ones
(see :mod:`.institution`). Maps are compiled once and cached; the cache is rebuilt when a
ConceptMap is written in this process, and otherwise checked every ``reload_every_us``
against the stored ConceptMaps (another server process may have written one).
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from huitong.clock import Clock
from huitong.fhir.definitions import resource_types
from huitong.fhir.search.parse import parse_search
from huitong.store.repository import Repository, StoredResource, Transaction, iter_pages
from huitong.terminology.ingest import (
    STANDARD_SYSTEMS,
    MapSet,
    loinc_code_of,
    translate_resource,
)
from huitong.terminology.institution import (
    REGION,
    UNKNOWN_INSTITUTION,
    ingest_scopes,
    own_organization,
    resolve_institution,
)
from huitong.terminology.translate import CompiledConceptMap, Match, compile_concept_map
from huitong.terminology.units.quantity import normalise_quantity

__all__ = ["NOT_TRANSLATED", "TranslationService"]

# Resources that define or carry terminology and conformance, or wrap other resources:
# translating them would change definitions, not data.
NOT_TRANSLATED = frozenset(
    {
        "CodeSystem",
        "ValueSet",
        "ConceptMap",
        "NamingSystem",
        "StructureDefinition",
        "StructureMap",
        "OperationDefinition",
        "SearchParameter",
        "CapabilityStatement",
        "CompartmentDefinition",
        "ImplementationGuide",
        "TerminologyCapabilities",
        "Bundle",
        "Parameters",
        "Binary",
        "AuditEvent",
        "Provenance",
        "Subscription",
        "OperationOutcome",
    }
)
_GOLDEN = ("urn:huitong:mpi", "golden")
# Systems that are standard beyond ingest.STANDARD_SYSTEMS: national and US code lists a
# region receives in Synthea-like data, never "local codes" to map.
EXTRA_STANDARD = (
    "urn:oid:2.16.840.1.113883.6.238",
    "http://www.ama-assn.org/go/cpt",
    "http://www.nlm.nih.gov/research/umls",
    "http://nucc.org/",
    "http://www.cms.gov/",
    "http://ncimeta.nci.nih.gov",
    "http://www.whocc.no/",
    "urn:iso:std:",
    "https://bluebutton.cms.gov/",
    "http://www.nubc.org/",
    "urn:ietf:rfc:3986",
)
_UPSERT = (
    "INSERT INTO terminology_unmapped (institution, system, code, res_type, res_id, display, "
    "first_seen, last_seen) VALUES {values} ON CONFLICT (institution, system, code, res_type, "
    "res_id) DO UPDATE SET last_seen = excluded.last_seen, "
    "display = COALESCE(excluded.display, terminology_unmapped.display)"
)
_ROWS_PER_STATEMENT = 400  # 8 parameters a row: well under SQLite's and psycopg's limits
# Systems without escapes only (three times faster than allowing them): a system the pattern
# cannot read is told by the count of ``"system":"`` and sends the resource to the walk.
_SYSTEM = re.compile(rb'"system":"([^"\\]*)"(,"value":)?')
_NOT_WALKED = frozenset({"meta", "text"})
_QUANTITY_KEYS = (b'"valueQuantity"', b'"referenceRange"')


@dataclass(slots=True)
class CompiledMaps:
    """The ingest maps in force, compiled: per scope (``Organization/<id>`` or region)."""

    by_scope: dict[str, list[CompiledConceptMap]]
    stamp: tuple[int, int]  # (how many ConceptMaps are stored, newest lastUpdated)
    layered: dict[str, _Layered] = field(default_factory=dict)

    def for_institution(self, institution: str | None) -> _Layered:
        key = institution or REGION
        found = self.layered.get(key)
        if found is None:
            region = MapSet(self.by_scope.get(REGION, []), standard_systems=_STANDARD)
            own = (
                MapSet(self.by_scope.get(key, []), standard_systems=_STANDARD)
                if key != REGION
                else None
            )
            found = self.layered[key] = _Layered(own, region)
        return found

    @property
    def institution_specific(self) -> bool:
        return any(scope != REGION for scope in self.by_scope)


_STANDARD = (*STANDARD_SYSTEMS, *EXTRA_STANDARD)


_standard_memo: dict[bytes, bool] = {}
# What the walk itself calls standard (prefix only: a system without ":" is not): needed
# when a resource is skipped for its quantities, which the walk would otherwise visit.
_walk_standard_memo: dict[bytes, bool] = {}
_VALUE_QUANTITY, _REFERENCE_RANGE = _QUANTITY_KEYS


def _memo_standard(memo: dict[bytes, bool], system: bytes, strict: bool) -> bool:
    standard = memo.get(system)
    if standard is None:
        if len(memo) > 10_000:
            memo.clear()
        text = system.decode("utf-8", "replace")
        standard = memo[system] = text.startswith(_STANDARD) or (not strict and ":" not in text)
    return standard


def _quantity_changes(content: dict[str, Any], data: bytes) -> bool:
    """Whether the walk would normalise a measured quantity of ``content`` (whose codings
    are all standard, so none is translated first): the quantities of the resource and of
    its ``component`` are tried the way the walk tries them, and any other quantity (one
    more ``valueQuantity`` or ``referenceRange`` in the text than found here: an extension's,
    a contained resource's) sends the resource through the walk."""
    nodes = [content]
    components = content.get("component")
    if type(components) is list:
        nodes += [c for c in components if type(c) is dict]
    values = ranges = 0
    for node in nodes:
        has_value, has_range = "valueQuantity" in node, "referenceRange" in node
        if not (has_value or has_range):
            continue
        loinc = loinc_code_of(node.get("code"))
        if has_value:
            values += 1
            vq = node["valueQuantity"]
            if isinstance(vq, dict) and normalise_quantity(vq, loinc_code=loinc) is not None:
                return True
        if has_range:
            ranges += 1
            for rr in node["referenceRange"] or []:
                if not isinstance(rr, dict):
                    continue
                for end in ("low", "high"):
                    q = rr.get(end)
                    if isinstance(q, dict) and normalise_quantity(q, loinc_code=loinc):
                        return True
    return values != data.count(_VALUE_QUANTITY) or ranges != data.count(_REFERENCE_RANGE)


def needs_walk(content: dict[str, Any], *, units: bool) -> bool:
    """Whether ``content`` may hold anything to translate, decided on its JSON text (a C
    scan, about a hundredth of the Python walk, which most resources would make for nothing:
    their codings are all standard). Conservative — any doubt sends the resource through the
    full walk: a non-standard ``system`` (other than an Identifier's, told by the ``value``
    after it, and a ContactPoint's, which is not a URI), more string ``code`` values than
    systems (a coding may lack its system), or a measured quantity not already in its
    preferred unit. ``meta`` and ``text`` are never translated, so they are not looked at."""
    data = orjson.dumps(
        {k: v for k, v in content.items() if k not in _NOT_WALKED}
        if "meta" in content or "text" in content
        else content
    )
    quantities = units and any(key in data for key in _QUANTITY_KEYS)
    systems = _SYSTEM.findall(data)
    if data.count(b'"code":"') > len(systems) or data.count(b'"system":"') != len(systems):
        return True
    for system, identifier in systems:
        if identifier:
            continue
        if not _memo_standard(_standard_memo, system, False):
            return True
        if quantities and not _memo_standard(_walk_standard_memo, system, True):
            return True  # the walk would look this coding up (and queue it unmapped)
    # Most measured values arrive in their preferred unit already (about three in four
    # Synthea Observations): trying them costs a few lookups, the walk tens of µs.
    return quantities and _quantity_changes(content, data)


class _Layered:
    """One institution's maps over the region's: the institution's answer wins when it has
    one, so a hospital can override a region-wide mapping for its own spelling."""

    __slots__ = ("own", "region")

    def __init__(self, own: MapSet | None, region: MapSet) -> None:
        self.own = own
        self.region = region

    def is_standard(self, system: str | None) -> bool:
        return self.region.is_standard(system)

    def targets(self, system: str | None, code: str) -> tuple[Match, ...]:
        if self.own is not None:
            found = self.own.targets(system, code)
            if found:
                return found
        return self.region.targets(system, code)


class _Deferred:
    """The maps of the resource being translated, chosen only when the walk meets its first
    local coding: most resources carry standard codes only and never need their institution
    (which may take a read)."""

    __slots__ = ("_institution", "_maps", "_resolve", "resolved")

    def __init__(self, maps: CompiledMaps, resolve: Any) -> None:
        self._maps = maps
        self._resolve = resolve
        self._institution: _Layered | None = None
        self.resolved: str | None = None

    def _layer(self) -> _Layered:
        if self._institution is None:
            self.resolved = self._resolve()
            self._institution = self._maps.for_institution(self.resolved)
        return self._institution

    def is_standard(self, system: str | None) -> bool:
        return bool(system) and str(system).startswith(_STANDARD)

    def targets(self, system: str | None, code: str) -> tuple[Match, ...]:
        return self._layer().targets(system, code)


@dataclass(slots=True)
class _TxState:
    known: dict[str, str | None] = field(default_factory=dict)  # Patient/Encounter → org
    # (institution, system, code, res_type, res_id) → display
    unmapped: dict[tuple[str, str, str, str, str], str | None] = field(default_factory=dict)


def _is_golden(resource: Mapping[str, Any]) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(isinstance(t, dict) and (t.get("system"), t.get("code")) == _GOLDEN for t in tags)


_warming: list[threading.Thread] = []


def _warm_units() -> None:
    """Build the UCUM unit registry in the background (seconds, once per process), so the
    first measured quantity a server receives does not wait for all of it."""
    if _warming:
        return

    def warm() -> None:
        normalise_quantity(
            {"value": 1, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
            loinc_code="2339-0",
        )

    thread = threading.Thread(target=warm, name="huitong-ucum-warm-up", daemon=True)
    _warming.append(thread)
    thread.start()


class TranslationService:
    """Ingest translation on every write of ``repo`` (see the module docstring).

    ``normalise_units`` turns the UCUM normalisation of quantities on or off on its own;
    ``reload_every_us`` bounds how long a ConceptMap written by another process goes
    unnoticed."""

    def __init__(
        self,
        repo: Repository,
        *,
        clock: Clock,
        normalise_units: bool = True,
        reload_every_us: int = 5_000_000,
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.normalise_units = normalise_units
        self.reload_every_us = reload_every_us
        self._maps: CompiledMaps | None = None
        self._checked_at: int | None = None
        self._lock = threading.Lock()
        self._states: weakref.WeakKeyDictionary[Any, _TxState] = weakref.WeakKeyDictionary()

    # -- set-up --------------------------------------------------------------------------
    def install(self) -> None:
        if self.normalise_units:
            _warm_units()
        types = [t for t in sorted(resource_types()) if t not in NOT_TRANSLATED]
        self.repo.add_write_transform("terminology", types, self._transform)
        self.repo.add_write_hook(
            "terminology", ["ConceptMap", "Patient", "Encounter"], self._after_write
        )
        self.repo.add_commit_hook("terminology", self._flush)

    def invalidate(self) -> None:
        """Forget the compiled maps: the next write reads them again (after a ConceptMap
        change this process committed, e.g. through the workbench)."""
        with self._lock:
            self._maps = None
            self._checked_at = None

    # -- maps ----------------------------------------------------------------------------
    def _stamp(self) -> tuple[int, int]:
        counted = self.repo.search(parse_search("ConceptMap", [("_summary", "count")]))
        total = counted.total or 0
        if not total:
            return (0, 0)
        newest = self.repo.search(
            parse_search(
                "ConceptMap", [("_sort", "-_lastUpdated"), ("_count", "1"), ("_total", "none")]
            )
        )
        return (total, newest.matches[0].last_updated if newest.matches else 0)

    def _load(self, stamp: tuple[int, int]) -> CompiledMaps:
        by_url: dict[str, tuple[int, dict[str, Any]]] = {}
        if stamp[0]:
            query = parse_search(
                "ConceptMap", [("_count", "500"), ("_total", "none")], max_count=500
            )
            for stored in iter_pages(self.repo, query):
                cm = stored.resource
                if not ingest_scopes(cm):
                    continue
                # One map per url: the latest written version is the one in force.
                key = cm.get("url") or stored.reference
                if key not in by_url or by_url[key][0] < stored.last_updated:
                    by_url[key] = (stored.last_updated, cm)
        by_scope: dict[str, list[CompiledConceptMap]] = {}
        for _, cm in sorted(by_url.values(), key=lambda item: item[0]):
            compiled = compile_concept_map(cm)
            for scope in ingest_scopes(cm):
                by_scope.setdefault(scope, []).append(compiled)
        return CompiledMaps(by_scope, stamp)

    def maps(self) -> CompiledMaps:
        """The compiled ingest maps in force (read again when stale)."""
        now = self.clock()
        with self._lock:
            current, checked = self._maps, self._checked_at
        if current is not None and checked is not None and now - checked < self.reload_every_us:
            return current
        stamp = self._stamp()
        if current is None or current.stamp != stamp:
            current = self._load(stamp)
        with self._lock:
            self._maps, self._checked_at = current, now
        return current

    # -- the write path ------------------------------------------------------------------
    def _state(self, tx: Transaction) -> _TxState:
        state = self._states.get(tx)
        if state is None:
            state = self._states[tx] = _TxState()
        return state

    def _transform(self, tx: Transaction, content: dict[str, Any]) -> dict[str, Any]:
        rtype = content.get("resourceType")
        if rtype == "Patient" and _is_golden(content):
            return content  # built by the identity service from already-translated sources
        if not needs_walk(content, units=self.normalise_units):
            return content
        state = self._state(tx)
        deferred = _Deferred(self.maps(), lambda: resolve_institution(tx, content, state.known))
        result = translate_resource(content, deferred, normalise_units=self.normalise_units)
        if result.unmapped:
            institution = deferred.resolved or UNKNOWN_INSTITUTION
            rid = str(content.get("id"))
            for u in result.unmapped:
                key = (institution, u.system or "", str(u.code), str(rtype), rid)
                if state.unmapped.get(key) is None:
                    state.unmapped[key] = u.display if isinstance(u.display, str) else None
        return result.resource

    def _after_write(
        self, tx: Transaction, stored: StoredResource, content: dict[str, Any] | None
    ) -> None:
        if stored.resource_type == "ConceptMap":
            # Read again at the next check: the map may not be committed yet, so only the
            # time of the last check is forgotten (the stamp comparison does the rest).
            with self._lock:
                self._checked_at = None
            return
        self._state(tx).known[stored.reference] = (
            own_organization(content) if content is not None else None
        )

    def _flush(self, tx: Transaction) -> None:
        state = self._states.get(tx)
        if state is None or not state.unmapped:
            return
        now = self.clock()
        rows = [(*key, display, now, now) for key, display in state.unmapped.items()]
        state.unmapped.clear()
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            tx.execute(_UPSERT.format(values=values), [v for row in chunk for v in row])

    # -- the queue -----------------------------------------------------------------------
    def is_mapped(self, institution: str, system: str, code: str) -> bool:
        """Whether a write from ``institution`` would now translate ``system|code``."""
        scope = None if institution in (UNKNOWN_INSTITUTION, REGION) else institution
        return bool(self.maps().for_institution(scope).targets(system or None, code))
