"""The mapping workbench: propose standard codes for local ones; record what an operator
decides as ConceptMap elements (https://hl7.org/fhir/R4/conceptmap.html).

Candidates come from fuzzy matching (``rapidfuzz``) of every name a local code has (display,
Chinese and English names, synonyms) against every name of the target concepts (display and
designations in any language), and of the pinyin of Chinese names against the pinyin of the
target's Chinese names, so 阿斯匹林 (a misspelling) still reaches 阿司匹林 and "asipilin"
typed in Latin letters does too. The confidence is the best score on a 0–1 scale (1.0 for
an exact name match); ``reasons`` say which names matched. Nothing here writes: accepting or
correcting returns a :class:`MappingDecision`, and :func:`concept_map_from_decisions` turns
decisions into a ConceptMap the caller stores.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from huitong.terminology.index import CodeSystemIndex
from huitong.terminology.pinyin import has_cjk, normalise_text, pinyin_keys

__all__ = [
    "Candidate", "LocalConcept", "MappingDecision", "Proposal", "TargetNames", "accept",
    "candidates_for", "concept_map_from_decisions", "correct", "propose_mappings",
]


@dataclass(frozen=True, slots=True)
class LocalConcept:
    system: str
    code: str
    display: str
    zh: str | None = None
    en: str | None = None
    synonyms: tuple[str, ...] = ()

    def names(self) -> list[str]:
        seen: list[str] = []
        for n in (self.display, self.zh, self.en, *self.synonyms):
            if n and n not in seen:
                seen.append(n)
        return seen


@dataclass(frozen=True, slots=True)
class Candidate:
    target_code: str
    display: str | None
    confidence: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Proposal:
    local: LocalConcept
    candidates: tuple[Candidate, ...]


@dataclass(slots=True)
class TargetNames:
    """Every searchable name of a target system, flattened for ``rapidfuzz``. Build once per
    target system version and reuse across proposals."""

    index: CodeSystemIndex
    texts: list[str] = field(default_factory=list)
    text_codes: list[str] = field(default_factory=list)
    text_names: list[str] = field(default_factory=list)
    pinyin: list[str] = field(default_factory=list)
    pinyin_codes: list[str] = field(default_factory=list)
    pinyin_names: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, index: CodeSystemIndex) -> TargetNames:
        names = cls(index)
        for concept in index:
            if concept.abstract or concept.inactive:
                continue
            for name in (concept.display, *(d.value for d in concept.designations)):
                if not name:
                    continue
                names.texts.append(normalise_text(name))
                names.text_codes.append(concept.code)
                names.text_names.append(name)
                py = pinyin_keys(name)
                if py:
                    names.pinyin.append(py[0])
                    names.pinyin_codes.append(concept.code)
                    names.pinyin_names.append(name)
        return names


def _local_pinyin(name: str) -> str | None:
    if has_cjk(name):
        keys = pinyin_keys(name)
        return keys[0] if keys else None
    folded = normalise_text(name).replace(" ", "")
    # Latin text that could be typed pinyin ("asipilin", "a si pi lin").
    return folded if folded.isalpha() and folded.isascii() else None


def candidates_for(
    local: LocalConcept, targets: TargetNames, *, limit: int = 5, min_confidence: float = 0.6
) -> list[Candidate]:
    """Up to ``limit`` candidates for one local concept, best first."""
    best: dict[str, tuple[float, list[str]]] = {}

    def note(code: str, score: float, reason: str) -> None:
        current = best.get(code)
        if current is None or score > current[0]:
            best[code] = (score, [reason, *(current[1] if current else [])][:3])
        elif reason not in current[1] and len(current[1]) < 3:
            current[1].append(reason)

    wide = max(limit * 4, 20)
    for name in local.names():
        folded = normalise_text(name)
        for text, score, i in process.extract(folded, targets.texts, scorer=fuzz.WRatio,
                                              limit=wide, score_cutoff=min_confidence * 100):
            exact = text == folded
            note(targets.text_codes[i], 1.0 if exact else score / 100,
                 f"{'exact' if exact else 'name'}: {name} ≈ {targets.text_names[i]}")
        py = _local_pinyin(name)
        if py and targets.pinyin:
            for _, score, i in process.extract(py, targets.pinyin, scorer=fuzz.ratio,
                                               limit=wide, score_cutoff=min_confidence * 100):
                # Sound-alike is weaker evidence than spelling: cap below an exact name.
                note(targets.pinyin_codes[i], min(score / 100, 0.95) * 0.97,
                     f"pinyin: {name} ≈ {targets.pinyin_names[i]}")
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
    out = []
    for code, (score, reasons) in ranked:
        concept = targets.index.get(code)
        out.append(Candidate(code, concept.display if concept else None, round(score, 3),
                             tuple(reasons)))
    return out


def propose_mappings(
    local_concepts: Iterable[LocalConcept], target_index: CodeSystemIndex | TargetNames, *,
    limit: int = 5, min_confidence: float = 0.6,
) -> list[Proposal]:
    """Candidates for each local concept against one target system."""
    targets = target_index if isinstance(target_index, TargetNames) else TargetNames.of(
        target_index)
    return [
        Proposal(local, tuple(candidates_for(local, targets, limit=limit,
                                             min_confidence=min_confidence)))
        for local in local_concepts
    ]


@dataclass(frozen=True, slots=True)
class MappingDecision:
    local: LocalConcept
    target_system: str
    target_code: str
    target_display: str | None
    equivalence: str = "equivalent"
    how: str = "accepted"  # accepted (a proposed candidate) or corrected (operator's choice)
    comment: str | None = None

    def element(self) -> dict[str, Any]:
        """The ``ConceptMap.group.element`` for this decision."""
        target: dict[str, Any] = {"code": self.target_code}
        if self.target_display:
            target["display"] = self.target_display
        target["equivalence"] = self.equivalence
        note = self.comment or f"{self.how} in the mapping workbench / 经映射工作台" + (
            "确认" if self.how == "accepted" else "修正")
        target["comment"] = note
        element: dict[str, Any] = {"code": self.local.code}
        if self.local.display:
            element["display"] = self.local.display
        element["target"] = [target]
        return element


def accept(local: LocalConcept, candidate: Candidate, *, target_system: str,
           equivalence: str = "equivalent") -> MappingDecision:
    """The operator accepts a proposed candidate."""
    return MappingDecision(local, target_system, candidate.target_code, candidate.display,
                           equivalence, "accepted")


def correct(local: LocalConcept, target_code: str, *, target_index: CodeSystemIndex,
            equivalence: str = "equivalent", comment: str | None = None) -> MappingDecision:
    """The operator picks another target. Failure contract: ValueError for a code the
    target system does not have (the caller shows it; nothing was recorded)."""
    concept = target_index.get(target_code)
    if concept is None:
        raise ValueError(f"{target_code} is not in {target_index.url}")
    return MappingDecision(local, target_index.url, concept.code, concept.display,
                           equivalence, "corrected", comment)


def concept_map_from_decisions(
    decisions: Sequence[MappingDecision], *, url: str, version: str, name: str,
    title: str | None = None, source_scope: str | None = None,
    target_scope: str | None = None, status: str = "active",
) -> dict[str, Any]:
    """A ConceptMap with one group per (local system, target system), elements in decision
    order; a later decision for the same local code replaces an earlier one."""
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for d in decisions:
        groups.setdefault((d.local.system, d.target_system), {})[d.local.code] = d.element()
    cm: dict[str, Any] = {"resourceType": "ConceptMap", "url": url, "version": version,
                          "name": name, "status": status}
    if title:
        cm["title"] = title
    if source_scope:
        cm["sourceUri"] = source_scope
    if target_scope:
        cm["targetUri"] = target_scope
    cm["group"] = [
        {"source": s, "target": t, "element": list(elements.values())}
        for (s, t), elements in groups.items()
    ]
    return cm
