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
from collections.abc import Callable, Mapping
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
from huitong.terminology.units.quantity import normalise_quantity, quantity_changes

__all__ = ["NOT_TRANSLATED", "TranslationService", "warm_units"]

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
    "first_seen, last_seen) {values} ON CONFLICT (institution, system, code, res_type, "
    "res_id) DO UPDATE SET last_seen = excluded.last_seen, "
    "display = COALESCE(excluded.display, terminology_unmapped.display)"
)
# On PostgreSQL the rows travel as one JSON parameter: binding eight parameters a row costs
# the client far more CPU than the server's unpacking (see huitong.quality.store).
_FROM_JSON = (
    "SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, (r->>6)::bigint, (r->>7)::bigint "
    "FROM jsonb_array_elements(?::jsonb) AS t(r)"
)
_ROWS_PER_STATEMENT = 400  # 8 parameters a row: well under SQLite's and psycopg's limits
_SYSTEM_KEY = b'"system":"'
_NOT_WALKED = frozenset({"meta", "text"})
_META_KEY = b'"meta":'
_META_KEY_LENGTH = len(_META_KEY)
# A narrative with only these keys holds no "system" and no "code" member.
_PLAIN_TEXT = frozenset({"status", "div"})
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


def _prefix_pattern(prefixes: tuple[str, ...]) -> bytes:
    """A regular expression matching any of ``prefixes``, as a trie (the engine tries
    alternatives one by one, so "http://" is compared once, not thirty times)."""
    trie: dict[str, Any] = {}
    for prefix in prefixes:
        node = trie
        for ch in prefix:
            node = node.setdefault(ch, {})
        node[""] = {}  # a prefix ends here: anything may follow

    def pattern(node: dict[str, Any]) -> str:
        if "" in node:
            return ""
        branches = [re.escape(ch) + pattern(rest) for ch, rest in sorted(node.items())]
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return pattern(trie).encode()


# A coding system that is not standard: '"system":"' not followed by a standard prefix, then
# the system (no quote, no escape) not followed by '","value":' (an Identifier's system is
# not a coding's). The loose form lets systems without ":" by (ContactPoint.system: phone,
# email), as the pre-check always did; the strict one is what the walk itself calls standard,
# needed when the resource carries a quantity (the walk visits its codings then). A system
# with an escape is matched by both: it is not read here, the walk decides.
_NOT_STANDARD = rb'"system":"(?:(?!' + _prefix_pattern(_STANDARD) + rb')'
_LOOSE = re.compile(_NOT_STANDARD + rb'[^":\\]*:[^"\\]*"(?!,"value":)|[^"]*\\)')
_STRICT = re.compile(_NOT_STANDARD + rb'[^"\\]*"(?!,"value":)|[^"]*\\)')


_VALUE_QUANTITY, _REFERENCE_RANGE = _QUANTITY_KEYS
_CODE_KEY = b'"code":"'
_BACKSLASH = b"\\"
_IDENTIFIER_NEXT = b',"value":'  # what follows an Identifier's system (see _NOT_STANDARD)
# The standard prefixes for bytes.startswith, which tries them in order: the systems most
# frequent in feeds first (any order gives the same answer).
_FREQUENT_FIRST = ("http://snomed.info/sct", "http://loinc.org", "http://terminology.hl7.org/",
                   "https://bluebutton.cms.gov/", "http://unitsofmeasure.org",
                   "http://hl7.org/fhir/")
_STANDARD_BYTES = tuple(
    p.encode() for p in (*_FREQUENT_FIRST, *(p for p in _STANDARD if p not in _FREQUENT_FIRST))
)


# What the pre-check finds: nothing to do, only measured quantities of the resource or its
# components to normalise (done without the walk), or anything else (the walk).
_NOTHING, _QUANTITIES, _WALK = 0, 1, 2


def _quantity_changes(content: dict[str, Any], value_keys: int, range_keys: int) -> int:
    """What the walk would do with the measured quantities of ``content`` (whose codings
    are all standard, so none is translated first): the quantities of the resource and of
    its ``component`` are tried the way the walk tries them; any other quantity (one more
    ``valueQuantity`` or ``referenceRange`` key in the text, ``value_keys`` and
    ``range_keys``, than found here: an extension's, a contained resource's) sends the
    resource through the walk."""
    components = content.get("component")
    if type(components) is not list and "referenceRange" not in content:
        # One node, no range (most measured Observations): the loop below, spelled out.
        if "valueQuantity" not in content:
            return _WALK if value_keys or range_keys else _NOTHING
        if value_keys != 1 or range_keys:
            return _WALK  # another quantity elsewhere (an extension's, a contained one's)
        vq = content["valueQuantity"]
        if isinstance(vq, dict) and quantity_changes(
            vq, loinc_code=loinc_code_of(content.get("code"))
        ):
            return _QUANTITIES
        return _NOTHING
    nodes = [content]
    if type(components) is list:
        nodes += [c for c in components if type(c) is dict]
    values = ranges = 0
    changes = False
    for node in nodes:
        has_value, has_range = "valueQuantity" in node, "referenceRange" in node
        if not (has_value or has_range):
            continue
        loinc = loinc_code_of(node.get("code"))
        if has_value:
            values += 1
            vq = node["valueQuantity"]
            if not changes and isinstance(vq, dict):
                changes = quantity_changes(vq, loinc_code=loinc)
        if has_range:
            ranges += 1
            if changes:
                continue
            for rr in node["referenceRange"] or []:
                if not isinstance(rr, dict):
                    continue
                for end in ("low", "high"):
                    q = rr.get(end)
                    if not changes and isinstance(q, dict):
                        changes = quantity_changes(q, loinc_code=loinc)
    if values != value_keys or ranges != range_keys:
        return _WALK
    return _QUANTITIES if changes else _NOTHING


def _cut(data: bytes, head: bytes, dumped: bytes) -> bytes | None:
    """``data`` without the first ``head + dumped`` (an element, its key and its value), or
    None when it is not there. The element is found from its short key (meta comes right
    after the id, so that scan stops within a few bytes) and compared in place, rather than
    searched for in full."""
    at = data.find(head)
    if at < 0 or not data.startswith(dumped, at + len(head)):
        at = data.find(head + dumped)
        if at < 0:
            return None
    return data[:at] + data[at + len(head) + len(dumped):]


def _without_unwalked(content: dict[str, Any], data: bytes) -> bytes:
    """``data`` (the JSON text of ``content``) with ``meta`` and ``text`` cut out, unless the
    text is the usual narrative (no system, no code in it). An element's serialisation is
    the same inside the whole (orjson writes a dict the same way every time); the first
    occurrence is the one cut."""
    meta = content.get("meta")
    if meta is not None:  # (always, on the write path: the store stamps it)
        cut = _cut(data, _META_KEY, orjson.dumps(meta))
        if cut is None:
            return orjson.dumps({k: v for k, v in content.items() if k not in _NOT_WALKED})
        data = cut
    text = content.get("text")
    if text is not None and not (type(text) is dict and _PLAIN_TEXT.issuperset(text)):
        cut = _cut(data, b'"text":', orjson.dumps(text))
        if cut is None:
            return orjson.dumps({k: v for k, v in content.items() if k not in _NOT_WALKED})
        data = cut
    return data


def _precheck_by_pattern(content: dict[str, Any], units: bool, data: bytes) -> int:
    """:func:`_precheck` on ``data`` (meta and text cut out) by the regular expressions: the
    general form, for a text holding an escape (the scan of :func:`_precheck` reads no
    escape)."""
    # Counted once here (a scan each): _quantity_changes compares them with what it finds.
    value_keys = data.count(_VALUE_QUANTITY) if units else 0
    range_keys = data.count(_REFERENCE_RANGE) if units else 0
    quantities = value_keys or range_keys
    if data.count(_CODE_KEY) > data.count(_SYSTEM_KEY):
        return _WALK  # more codes than systems: a coding may lack its system
    if (_STRICT if quantities else _LOOSE).search(data) is not None:
        # A local system (the walk would look its codings up, and queue them unmapped), or
        # one the pattern does not read.
        return _WALK
    # Most measured values arrive in their preferred unit already (about three in four
    # Synthea Observations): trying them costs a few lookups, the walk tens of µs.
    return _quantity_changes(content, value_keys, range_keys) if quantities else _NOTHING


def _precheck(content: dict[str, Any], units: bool,
              dumps: Callable[[dict[str, Any]], bytes] = orjson.dumps) -> int:
    """:func:`needs_walk`, telling apart the resources whose only change is the
    normalisation of their own (or their components') measured quantities. ``dumps``: the
    write path's serialiser (``Transaction.serialised``), whose bytes the store then reuses
    for a resource this leaves unchanged, instead of serialising it a second time."""
    data = dumps(content)
    meta, text = content.get("meta"), content.get("text")
    if type(meta) is dict and (text is None or (type(text) is dict
                                                and _PLAIN_TEXT.issuperset(text))):
        # The usual resource, written out: meta (stamped by the store right after the id)
        # is the only element to cut, found at its short key.
        dumped = orjson.dumps(meta)
        at = data.find(_META_KEY)
        if at >= 0 and data.startswith(dumped, at + _META_KEY_LENGTH):
            data = data[:at] + data[at + _META_KEY_LENGTH + len(dumped):]
        else:
            data = _without_unwalked(content, data)
    else:
        data = _without_unwalked(content, data)
    # (find, not "in": bytes.__contains__ first tries the needle as an integer, and the
    # TypeError it formats costs more than the scan)
    if data.find(_BACKSLASH) >= 0:  # escapes are rare (narratives, free text)
        return _precheck_by_pattern(content, units, data)
    # What _LOOSE / _STRICT find, read system by system: the text split at '"system":"'
    # (one C scan, which also counts the systems) and each system compared with the
    # standard prefixes in C. Without an escape in the text a system ends at its first
    # quote, so the two agree exactly (tests compare them).
    chunks = data.split(_SYSTEM_KEY)
    if data.count(_CODE_KEY) >= len(chunks):
        return _WALK  # more codes than systems: a coding may lack its system
    colonless = False  # a local system without ":" (ContactPoint.system): _STRICT's only
    for chunk in chunks[1:]:
        if chunk.startswith(_STANDARD_BYTES):
            continue
        end = chunk.find(b'"')
        if end < 0:  # not JSON as orjson writes it: the pattern decides
            return _precheck_by_pattern(content, units, data)
        if chunk.startswith(_IDENTIFIER_NEXT, end + 1):
            continue  # an Identifier's system
        if chunk.find(b":", 0, end) >= 0:
            return _WALK  # a local system
        colonless = True
    if not units:
        return _NOTHING
    value_keys = data.count(_VALUE_QUANTITY)
    range_keys = data.count(_REFERENCE_RANGE)
    if not (value_keys or range_keys):
        return _NOTHING
    if colonless:
        return _WALK
    # Most measured values arrive in their preferred unit already (about three in four
    # Synthea Observations): trying them costs a few lookups, the walk tens of µs.
    return _quantity_changes(content, value_keys, range_keys)


def needs_walk(content: dict[str, Any], *, units: bool) -> bool:
    """Whether ``content`` may hold anything to translate, decided on its JSON text (a C
    scan, about a hundredth of the Python walk, which most resources would make for nothing:
    their codings are all standard). Conservative — any doubt sends the resource through the
    full walk: a non-standard ``system`` (other than an Identifier's, told by the ``value``
    after it, and a ContactPoint's, which is not a URI), more string ``code`` values than
    systems (a coding may lack its system), or a measured quantity not already in its
    preferred unit. ``meta`` and ``text`` are never translated, so they are not looked at."""
    return _precheck(content, units) != _NOTHING


def normalise_known_quantities(content: dict[str, Any]) -> dict[str, Any]:
    """What the walk returns for a resource whose only change is the normalisation of the
    ``valueQuantity`` / ``referenceRange`` of the resource and its components (all its
    codings standard, no other quantity: :func:`_precheck` said so), without walking it:
    a new resource sharing every element it does not change."""

    def node(item: dict[str, Any]) -> dict[str, Any]:
        loinc = loinc_code_of(item.get("code"))
        out = item
        vq = item.get("valueQuantity")
        if isinstance(vq, dict):
            done = normalise_quantity(vq, loinc_code=loinc)
            if done is not None:
                out = {**item, "valueQuantity": done}
        ranges = item.get("referenceRange")
        if isinstance(ranges, list):
            new_ranges, changed = list(ranges), False
            for i, rr in enumerate(ranges):
                if not isinstance(rr, dict):
                    continue
                for end in ("low", "high"):
                    q = rr.get(end)
                    done = normalise_quantity(q, loinc_code=loinc) if isinstance(q, dict) else None
                    if done is not None:
                        rr = new_ranges[i] = {**rr, end: done}
                        changed = True
            if changed:
                out = {**out, "referenceRange": new_ranges}
        return out

    result = node(content)
    components = content.get("component")
    if type(components) is list:
        new = [node(c) if type(c) is dict else c for c in components]
        if any(a is not b for a, b in zip(new, components, strict=True)):
            result = {**result, "component": new}
    return result


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
_warm = False  # the registry is built in this process (or the process it was forked from)


def warm_units() -> None:
    """Build the UCUM unit registry now (about 0.8 s of CPU, once per process). The server's
    supervisor calls it before forking its workers, which then share the registry instead
    of each building its own while the first requests arrive."""
    global _warm
    normalise_quantity(
        {"value": 1, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
        loinc_code="2339-0",
    )
    _warm = True


def _warm_units() -> None:
    """Build the UCUM unit registry in the background (once per process, unless inherited),
    so the first measured quantity a server receives does not wait for all of it."""
    if _warming or _warm:
        return
    thread = threading.Thread(target=warm_units, name="huitong-ucum-warm-up", daemon=True)
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
        # Kept in the transaction's own state, under this service (see Transaction.state).
        state: _TxState | None = tx.state.get(self)
        if state is None:
            state = tx.state[self] = _TxState()
        return state

    def _transform(self, tx: Transaction, content: dict[str, Any]) -> dict[str, Any]:
        rtype = content.get("resourceType")
        if rtype == "Patient" and _is_golden(content):
            return content  # built by the identity service from already-translated sources
        serialised = getattr(tx, "serialised", None) or orjson.dumps
        found = _precheck(content, self.normalise_units, serialised)
        if found == _NOTHING:
            return content
        if found == _QUANTITIES:
            return normalise_known_quantities(content)
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
        state: _TxState | None = tx.state.get(self)
        if state is None or not state.unmapped:
            return
        now = self.clock()
        rows = [(*key, display, now, now) for key, display in state.unmapped.items()]
        state.unmapped.clear()
        if self.repo.dialect == "postgresql":
            # Deferred: nobody reads its answer, and the store's last flush (right after the
            # commit hooks) carries it in its pipeline instead of a round trip of its own.
            tx.execute_later(_UPSERT.format(values=_FROM_JSON), (orjson.dumps(rows).decode(),))
            return
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            values = "VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            tx.execute(_UPSERT.format(values=values), [v for row in chunk for v in row])

    # -- the queue -----------------------------------------------------------------------
    def is_mapped(self, institution: str, system: str, code: str) -> bool:
        """Whether a write from ``institution`` would now translate ``system|code``."""
        scope = None if institution in (UNKNOWN_INSTITUTION, REGION) else institution
        return bool(self.maps().for_institution(scope).targets(system or None, code))
