"""The mapping workbench over the repository: the unmapped-codes queue, candidates, decisions
written into the institution's ConceptMap, and re-translation of stored records.

The queue is what the write path recorded (``terminology_unmapped``: one row per local code
per record). A decision is written into the ConceptMap of its scope — ``ConceptMap/ingest-
<organization id>`` for one institution, ``ConceptMap/ingest-region`` for the whole region —
through the repository, so it is validated, versioned and searchable like any resource and
every later write translates the code. Records stored before the decision still carry only
the local code; :meth:`MappingWorkbench.retranslate` rewrites them through the same write
path (a new version each, the original coding kept).

Failure contract: FhirError — INVALID for bad input, NOT_FOUND for a target code system that
is not loaded or a code it does not have; messages in English and Chinese.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from huitong.clock import Clock
from huitong.fhir.dates import format_instant
from huitong.fhir.errors import Category, FhirError
from huitong.store.repository import Repository, Transaction
from huitong.terminology.index import CodeSystemIndex
from huitong.terminology.institution import (
    REGION,
    UNKNOWN_INSTITUTION,
    ingest_use_context,
    organization_reference,
)
from huitong.terminology.mapping.workbench import (
    Candidate,
    LocalConcept,
    MappingDecision,
    TargetNames,
    accept,
    candidates_for,
    correct,
)
from huitong.terminology.service import Terminology
from huitong.terminology.write_path import TranslationService

__all__ = ["EQUIVALENCES", "MappingWorkbench", "QueueItem", "concept_map_id"]

EQUIVALENCES = frozenset(
    {
        "relatedto",
        "equivalent",
        "equal",
        "wider",
        "subsumes",
        "narrower",
        "specializes",
        "inexact",
    }
)
_ID_SAFE = re.compile(r"[^A-Za-z0-9\-.]")
_BATCH = 50


@dataclass(frozen=True, slots=True)
class QueueItem:
    institution: str
    system: str
    code: str
    display: str | None
    records: int
    first_seen: int
    last_seen: int
    mapped: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "institution": self.institution,
            "system": self.system,
            "code": self.code,
            "display": self.display,
            "records": self.records,
            "firstSeen": format_instant(self.first_seen),
            "lastSeen": format_instant(self.last_seen),
            "mapped": self.mapped,
        }


def _invalid(en: str, zh: str) -> FhirError:
    return FhirError(Category.INVALID, f"{en} / {zh}")


def scope_of(institution: str | None) -> str:
    """``Organization/<id>`` or :data:`REGION` (also for ``unknown``: records that name no
    institution are translated with the region's maps)."""
    if institution in (None, "", REGION, UNKNOWN_INSTITUTION):
        return REGION
    org = organization_reference({"reference": institution})
    if org is None or org != institution:
        raise _invalid(
            f"institution must be Organization/<id>, '{REGION}' or '{UNKNOWN_INSTITUTION}'",
            f"institution 必须是 Organization/<id>、{REGION} 或 {UNKNOWN_INSTITUTION}",
        )
    return org


def concept_map_id(scope: str) -> str:
    """The id of the ingest ConceptMap of ``scope`` (at most 64 characters, as FHIR ids)."""
    tail = REGION if scope == REGION else _ID_SAFE.sub("-", scope.split("/", 1)[1])
    if len(tail) > 57:
        tail = tail[:40] + "-" + hashlib.sha256(tail.encode()).hexdigest()[:16]
    return f"ingest-{tail}"


def _group_key(group: dict[str, Any]) -> tuple[str | None, str | None]:
    return group.get("source"), group.get("target")


def merge_decision(concept_map: dict[str, Any], decision: MappingDecision) -> dict[str, Any]:
    """``concept_map`` with ``decision`` as the only element for its local code: an earlier
    element for the same code (to any target system) is replaced."""
    source = decision.local.system or None
    element = decision.element()
    groups: list[dict[str, Any]] = []
    placed = False
    for g in concept_map.get("group") or []:
        group = dict(g)
        elements = [
            e
            for e in group.get("element") or []
            if not (group.get("source") == source and e.get("code") == element["code"])
        ]
        if _group_key(group) == (source, decision.target_system):
            elements.append(element)
            placed = True
        if elements:
            group["element"] = elements
            groups.append(group)
    if not placed:
        group = {"target": decision.target_system, "element": [element]}
        if source:
            group = {"source": source, **group}
        groups.append(group)
    out = dict(concept_map)
    out["group"] = groups
    return out


class MappingWorkbench:
    """The workbench over ``repo``; ``translation`` is the write path's service (its maps
    say what is mapped, and it is told when a decision changes them)."""

    def __init__(
        self,
        repo: Repository,
        translation: TranslationService,
        terminology: Terminology,
        *,
        clock: Clock,
    ) -> None:
        self.repo = repo
        self.translation = translation
        self.terminology = terminology
        self.clock = clock
        self._targets: OrderedDict[int, tuple[CodeSystemIndex, TargetNames]] = OrderedDict()
        self._lock = threading.Lock()

    # -- the queue -----------------------------------------------------------------------
    def queue(
        self,
        *,
        institution: str | None = None,
        system: str | None = None,
        include_mapped: bool = False,
    ) -> list[QueueItem]:
        """Unmapped local codes, most records affected first."""
        where, params = [], []
        if institution:
            where.append("institution = ?")
            params.append(institution)
        if system is not None:
            where.append("system = ?")
            params.append(system)
        cond = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.repo.query(
            "SELECT institution, system, code, MAX(display), COUNT(*), MIN(first_seen), "
            f"MAX(last_seen) FROM terminology_unmapped {cond} "
            "GROUP BY institution, system, code "
            "ORDER BY COUNT(*) DESC, institution, system, code",
            params,
        )
        out = []
        for inst, sys_, code, display, n, first, last in rows:
            mapped = self.translation.is_mapped(inst, sys_, code)
            if mapped and not include_mapped:
                continue
            out.append(QueueItem(inst, sys_, code, display, int(n), int(first), int(last), mapped))
        return out

    def affected(self, scope: str, system: str, code: str) -> list[tuple[str, str, str]]:
        """``(institution, res_type, res_id)`` of the queued records a decision in ``scope``
        concerns (a region-wide decision concerns every institution's records)."""
        sql = (
            "SELECT institution, res_type, res_id FROM terminology_unmapped "
            "WHERE system = ? AND code = ?"
        )
        params: list[Any] = [system, code]
        if scope != REGION:
            sql += " AND institution = ?"
            params.append(scope)
        return [
            (str(a), str(b), str(c))
            for a, b, c in self.repo.query(sql + " ORDER BY 1, 2, 3", params)
        ]

    # -- candidates ----------------------------------------------------------------------
    def _target_names(self, target_system: str) -> TargetNames:
        index = self.terminology.find_code_system_index(target_system)
        if index is None:
            raise FhirError(
                Category.NOT_FOUND,
                f"code system {target_system} is not loaded / 未加载代码系统 {target_system}",
            )
        with self._lock:
            found = self._targets.get(id(index))
            if found is not None and found[0] is index:
                self._targets.move_to_end(id(index))
                return found[1]
        names = TargetNames.of(index)  # outside the lock: large systems take a while
        with self._lock:
            self._targets[id(index)] = (index, names)
            while len(self._targets) > 4:
                self._targets.popitem(last=False)
        return names

    def local_concept(
        self, institution: str | None, system: str, code: str, display: str | None = None
    ) -> LocalConcept:
        """The local code with every name known for it: the display sent with it (latest in
        the queue) and, when the local code list is loaded as a CodeSystem, its Chinese and
        English names and synonyms."""
        if display is None:
            sql = "SELECT MAX(display) FROM terminology_unmapped WHERE system = ? AND code = ?"
            params: list[Any] = [system, code]
            if institution:
                sql += " AND institution = ?"
                params.append(institution)
            rows = self.repo.query(sql, params)
            display = rows[0][0] if rows and rows[0][0] else None
        zh = en = None
        synonyms: list[str] = []
        index = self.terminology.find_code_system_index(system) if system else None
        concept = index.get(code) if index is not None else None
        if concept is not None:
            display = display or concept.display
            for d in concept.designations:
                lang = (d.language or "").lower()
                if lang.startswith("zh") and zh is None:
                    zh = d.value
                elif lang.startswith("en") and en is None:
                    en = d.value
                else:
                    synonyms.append(d.value)
        if not display and not zh and not en:
            raise FhirError(
                Category.NOT_FOUND,
                f"no name is known for {system}|{code}: pass display / "
                f"未知 {system}|{code} 的名称，请提供 display",
            )
        return LocalConcept(system, code, display or zh or en or code, zh, en, tuple(synonyms))

    def candidates(
        self,
        local: LocalConcept,
        target_system: str,
        *,
        limit: int = 5,
        min_confidence: float = 0.6,
    ) -> list[Candidate]:
        return candidates_for(
            local, self._target_names(target_system), limit=limit, min_confidence=min_confidence
        )

    # -- decisions -----------------------------------------------------------------------
    def decide(
        self,
        *,
        institution: str | None,
        system: str,
        code: str,
        target_system: str,
        target_code: str,
        display: str | None = None,
        equivalence: str = "equivalent",
        how: str = "accepted",
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Record an operator's decision in the scope's ingest ConceptMap. Returns the map's
        reference and version and how many queued records the decision concerns."""
        if not code:
            raise _invalid("code is required", "code 为必填项")
        if equivalence not in EQUIVALENCES:
            raise _invalid(
                f"equivalence must be one of {', '.join(sorted(EQUIVALENCES))}",
                "equivalence 取值无效",
            )
        if how not in ("accepted", "corrected"):
            raise _invalid(
                "how must be 'accepted' or 'corrected'", "how 必须是 accepted 或 corrected"
            )
        scope = scope_of(institution)
        index = self.terminology.find_code_system_index(target_system)
        if index is None:
            raise FhirError(
                Category.NOT_FOUND,
                f"code system {target_system} is not loaded / 未加载代码系统 {target_system}",
            )
        concept = index.get(target_code)
        if concept is None:
            raise FhirError(
                Category.NOT_FOUND,
                f"{target_code} is not a code of {target_system} / "
                f"{target_code} 不是 {target_system} 中的代码",
            )
        local = LocalConcept(system, code, display or self._display_or_code(system, code))
        if how == "accepted":
            decision = accept(
                local,
                Candidate(concept.code, concept.display, 1.0, ()),
                target_system=target_system,
                equivalence=equivalence,
            )
            if comment:
                decision = MappingDecision(
                    local,
                    target_system,
                    concept.code,
                    concept.display,
                    equivalence,
                    "accepted",
                    comment,
                )
        else:
            decision = correct(
                local, target_code, target_index=index, equivalence=equivalence, comment=comment
            )
        map_id = concept_map_id(scope)
        with self.repo.transaction() as tx:
            stored = self._write_decision(tx, map_id, scope, decision)
        self.translation.invalidate()
        return {
            "conceptMap": stored[0],
            "version": stored[1],
            "scope": scope,
            "element": decision.element(),
            "targetSystem": target_system,
            "affectedRecords": len(self.affected(scope, system, code)),
        }

    def _display_or_code(self, system: str, code: str) -> str:
        rows = self.repo.query(
            "SELECT MAX(display) FROM terminology_unmapped WHERE system = ? AND code = ?",
            [system, code],
        )
        return str(rows[0][0]) if rows and rows[0][0] else code

    def _write_decision(
        self, tx: Transaction, map_id: str, scope: str, decision: MappingDecision
    ) -> tuple[str, str]:
        # Decisions on one map are serialised: each reads the map and writes it back whole.
        tx.lock(f"terminology:concept-map:{map_id}")
        current = tx.read("ConceptMap", map_id)
        if current is None or current.deleted:
            name = "region" if scope == REGION else scope.split("/", 1)[1]
            base: dict[str, Any] = {
                "resourceType": "ConceptMap",
                "id": map_id,
                "url": f"urn:huitong:concept-map:{map_id}",
                "version": "1",
                "name": re.sub(r"[^A-Za-z0-9_]", "_", f"Ingest_{name}")[:255],
                "title": (
                    f"Local codes of {scope} to standard codes / {scope} 本地编码到标准编码"
                    if scope != REGION
                    else "Region-wide local-to-standard codes / 全区域本地编码到标准编码"
                ),
                "status": "active",
                "useContext": [ingest_use_context(scope)],
            }
        else:
            base = current.resource
            try:
                base["version"] = str(int(str(base.get("version") or "0")) + 1)
            except ValueError:
                base["version"] = f"{base.get('version')}.1"
            base["status"] = "active"
        outcome = tx.update(merge_decision(base, decision))
        return outcome.stored.reference, str(base["version"])

    # -- re-translation ------------------------------------------------------------------
    def retranslate(
        self, *, institution: str | None, system: str, code: str, limit: int | None = None
    ) -> dict[str, int]:
        """Rewrite the queued records carrying ``system|code`` through the write path, so
        they gain the mapping decided since. Each record that still has no translation is
        queued again by the write path itself."""
        scope = scope_of(institution)
        targets = self.affected(scope, system, code)
        if limit is not None:
            targets = targets[:limit]
        counts = {"records": len(targets), "rewritten": 0, "gone": 0, "failed": 0}
        for start in range(0, len(targets), _BATCH):
            batch = targets[start : start + _BATCH]
            try:
                self._rewrite(batch, system, code, counts)
            except FhirError:
                # One refused record (a data-quality rule changed since) must not hold up
                # the rest: redo the batch one record per transaction.
                for one in batch:
                    try:
                        self._rewrite([one], system, code, counts)
                    except FhirError:
                        counts["failed"] += 1
        counts["remaining"] = len(self.affected(scope, system, code))
        return counts

    def _rewrite(
        self, batch: Sequence[tuple[str, str, str]], system: str, code: str, counts: dict[str, int]
    ) -> None:
        done = {"rewritten": 0, "gone": 0}
        with self.repo.transaction() as tx:
            for inst, rtype, rid in batch:
                tx.execute(
                    "DELETE FROM terminology_unmapped WHERE institution = ? AND "
                    "system = ? AND code = ? AND res_type = ? AND res_id = ?",
                    (inst, system, code, rtype, rid),
                )
                stored = tx.read(rtype, rid)
                if stored is None or stored.deleted:
                    done["gone"] += 1
                    continue
                tx.update(stored.resource)
                done["rewritten"] += 1
        for key, n in done.items():
            counts[key] += n
