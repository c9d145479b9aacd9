"""Matching decisions as data: what to do with a new or updated source record.

:func:`decide` scores a record against its blocked candidates and returns
:class:`LinkAction` values; it writes nothing. The lead's executor applies them (link rows,
review-queue rows) in one transaction. Policy:

* a candidate pair remembered as certainly-not is never scored or proposed again;
* candidates are grouped by the golden record they are linked to; a golden's score is its
  best source's score;
* exactly one golden at ``certain`` → ``link`` automatically (``auto=True``);
* several goldens at ``certain`` → the record is linked to none and every such golden goes
  to review (two goldens that look like one person need an operator);
* ``probable`` and ``possible`` goldens → ``review`` with the evidence;
* no golden at ``certain`` → ``create-golden`` (the record starts its own identity; review
  items, if any, stay open for an operator to merge).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from huitong.mpi.model import Grade, MatchModel, ScoredPair, explain, score_pair
from huitong.mpi.record import IdentityRecord

__all__ = ["LinkAction", "decide", "pair_key"]

ActionKind = Literal["link", "review", "create-golden"]


def pair_key(a: str, b: str) -> frozenset[str]:
    """Order-free key of two references, as the certainly-not memory stores them."""
    return frozenset((a, b))


@dataclass(frozen=True, slots=True)
class LinkAction:
    """One thing the executor should do for ``source``.

    ``golden`` is the golden Patient reference (``None`` for ``create-golden``);
    ``matched_source`` the candidate source record that produced the score.
    """

    kind: ActionKind
    source: str
    golden: str | None = None
    grade: Grade | None = None
    probability: float | None = None
    matched_source: str | None = None
    auto: bool = False
    evidence: dict[str, Any] | None = None


def decide(
    new_record: IdentityRecord,
    candidates: Iterable[IdentityRecord],
    existing_links: Mapping[str, str],
    certainly_not_pairs: set[frozenset[str]],
    model: MatchModel[IdentityRecord],
) -> list[LinkAction]:
    """Actions for ``new_record`` given its blocked ``candidates``.

    ``existing_links`` maps source reference → golden reference; a candidate without a
    golden is ignored (it is being processed itself). ``certainly_not_pairs`` holds
    :func:`pair_key` of source/source or source/golden pairs an operator rejected.
    """
    source = new_record.source
    best: dict[str, tuple[ScoredPair, str]] = {}
    for candidate in candidates:
        if candidate.source == source:
            continue
        golden = existing_links.get(candidate.source)
        if golden is None:
            continue
        if pair_key(source, candidate.source) in certainly_not_pairs:
            continue
        if pair_key(source, golden) in certainly_not_pairs:
            continue
        scored = score_pair(model, new_record, candidate)
        if scored.grade == "certainly-not":
            continue
        current = best.get(golden)
        if current is None or scored.probability > current[0].probability:
            best[golden] = (scored, candidate.source)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0].probability, item[0]))
    certain = [(g, s) for g, s in ranked if s[0].grade == "certain"]
    actions: list[LinkAction] = []
    if len(certain) == 1:
        golden, (scored, matched) = certain[0]
        actions.append(
            LinkAction("link", source, golden, "certain", scored.probability, matched, True,
                       explain(scored))
        )  # fmt: skip
        return actions
    for golden, (scored, matched) in ranked:
        actions.append(
            LinkAction("review", source, golden, scored.grade, scored.probability, matched,
                       False, explain(scored))
        )  # fmt: skip
    if not certain:
        actions.append(LinkAction("create-golden", source))
    return actions
