"""The Fellegi–Sunter match model: parameters, scoring, grades, JSON.

For each comparison ``k`` and level ``l`` the model holds ``m = P(level | match)`` and
``u = P(level | non-match)``; a pair's match weight is ``log2(prior/(1-prior))`` plus the
sum of ``log2(m/u)`` over its levels (missing levels add 0), and its probability is
``1 / (1 + 2**-weight)``. For comparisons with a term-frequency table the exact level uses
an extra ``log2(baseline / frequency)``, where ``baseline`` is the chance that two random
records agree on the field (the sum of squared value frequencies): a shared rare name is
stronger evidence than a shared ``张伟``, and a shared common one weaker than average.
Deterministic rules of the specification make a pair certain first.

Grades follow FHIR ``$match`` (https://hl7.org/fhir/R4/patient-operation-match.html,
code system http://hl7.org/fhir/match-grade): ``certain`` / ``probable`` / ``possible`` at
or above their probability thresholds, ``certainly-not`` below ``possible``.

Fellegi & Sunter, "A Theory for Record Linkage", JASA 64 (1969) 1183-1210.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal

from huitong.mpi.compare.comparison import R
from huitong.mpi.spec import SPECS, LinkageSpec

__all__ = [
    "GRADES",
    "ComparisonParams",
    "FieldEvidence",
    "Grade",
    "MatchModel",
    "ScoredPair",
    "Thresholds",
    "explain",
    "score_pair",
]

Grade = Literal["certain", "probable", "possible", "certainly-not"]
GRADES: tuple[Grade, ...] = ("certain", "probable", "possible", "certainly-not")
FORMAT = "huitong-mpi-model/1"
# Weight added by a term-frequency adjustment is capped: a name seen once in the training
# data is rare there, not necessarily rare in the region.
TF_MAX_BONUS_BITS = 3.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Probability thresholds per grade; operators tune these and see the effect."""

    certain: float = 0.99
    probable: float = 0.90
    possible: float = 0.50

    def __post_init__(self) -> None:
        if not 0.0 <= self.possible <= self.probable <= self.certain <= 1.0:
            raise ValueError("thresholds must satisfy 0 <= possible <= probable <= certain <= 1")

    def grade(self, probability: float) -> Grade:
        if probability >= self.certain:
            return "certain"
        if probability >= self.probable:
            return "probable"
        if probability >= self.possible:
            return "possible"
        return "certainly-not"


@dataclass(frozen=True, slots=True)
class ComparisonParams:
    """m and u per level of one comparison, and its optional term-frequency table."""

    name: str
    levels: tuple[str, ...]
    m: tuple[float, ...]
    u: tuple[float, ...]
    tf: Mapping[str, float] = field(default_factory=dict)
    tf_default: float = 0.0  # frequency assumed for a value not in ``tf``
    # Computed once: summing a table of thousands of names on every scored pair made the
    # baseline most of the cost of scoring.
    _tf_baseline: float = field(default=0.0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tf_baseline", sum(f * f for f in self.tf.values()))

    @property
    def tf_baseline(self) -> float:
        """Chance that two random records agree on this field (sum of squared frequencies)."""
        return self._tf_baseline

    def level_weight(self, level: int) -> float:
        return math.log2(self.m[level] / self.u[level])

    def weight(self, level: int, tf_value: str | None = None) -> tuple[float, bool]:
        """Weight of ``level``; ``True`` in second place when a TF adjustment applied."""
        base = self.level_weight(level)
        if level != 0 or tf_value is None or not (self.tf or self.tf_default):
            return base, False
        freq = self.tf.get(tf_value, self.tf_default)
        if freq <= 0:
            return base, False
        baseline = self.tf_baseline
        if baseline <= 0:
            return base, False
        bonus = math.log2(baseline / freq)
        return base + min(bonus, TF_MAX_BONUS_BITS), True


@dataclass(frozen=True, slots=True)
class FieldEvidence:
    """One comparison's contribution to a pair's score: what the review queue shows."""

    comparison: str
    level: str | None  # None: missing on either side
    weight: float
    tf_adjusted: bool = False


@dataclass(frozen=True, slots=True)
class ScoredPair:
    weight: float
    probability: float
    grade: Grade
    evidence: tuple[FieldEvidence, ...]
    rule: str | None = None  # the deterministic rule that decided, if any

    def levels(self) -> dict[str, str | None]:
        return {e.comparison: e.level for e in self.evidence}


@dataclass(frozen=True, slots=True)
class MatchModel(Generic[R]):
    """A trained model for one :class:`LinkageSpec`."""

    spec: LinkageSpec[R]
    params: tuple[ComparisonParams, ...]
    prior: float
    thresholds: Thresholds = Thresholds()

    def __post_init__(self) -> None:
        names = tuple(c.name for c in self.spec.comparisons)
        if names != tuple(p.name for p in self.params):
            raise ValueError(f"parameters {[p.name for p in self.params]} do not fit {names}")
        if not 0.0 < self.prior < 1.0:
            raise ValueError("prior must be strictly between 0 and 1")

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1.0 - self.prior))

    def with_thresholds(self, thresholds: Thresholds) -> MatchModel[R]:
        return replace(self, thresholds=thresholds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "spec": self.spec.name,
            "prior": self.prior,
            "thresholds": {
                "certain": self.thresholds.certain,
                "probable": self.thresholds.probable,
                "possible": self.thresholds.possible,
            },
            "comparisons": [
                {
                    "name": p.name,
                    "levels": [
                        {"level": lv, "m": m, "u": u}
                        for lv, m, u in zip(p.levels, p.m, p.u, strict=True)
                    ],
                    "tf": dict(p.tf),
                    "tf_default": p.tf_default,
                }
                for p in self.params
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str, spec: LinkageSpec[R] | None = None) -> MatchModel[R]:
        """Load a model; ``spec`` defaults to the registered one the JSON names.

        Raises ``ValueError`` on another format or unknown specification.
        """
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        if spec is None:
            if data["spec"] not in SPECS:
                raise ValueError(f"unknown linkage specification {data['spec']!r}")
            spec = SPECS[data["spec"]]
        params = tuple(
            ComparisonParams(
                name=c["name"],
                levels=tuple(lv["level"] for lv in c["levels"]),
                m=tuple(float(lv["m"]) for lv in c["levels"]),
                u=tuple(float(lv["u"]) for lv in c["levels"]),
                tf={str(k): float(v) for k, v in c.get("tf", {}).items()},
                tf_default=float(c.get("tf_default", 0.0)),
            )
            for c in data["comparisons"]
        )
        return cls(spec, params, float(data["prior"]), Thresholds(**data["thresholds"]))


def probability_of(weight: float) -> float:
    if weight > 60:
        return 1.0
    return 1.0 / (1.0 + 2.0 ** (-weight))


def score_pair(model: MatchModel[R], a: R, b: R) -> ScoredPair:
    """Compare two records under ``model`` and grade the pair."""
    evidence = []
    total = model.prior_weight
    for comparison, params in zip(model.spec.comparisons, model.params, strict=True):
        level = comparison.level_of(a, b)
        if level is None:
            evidence.append(FieldEvidence(comparison.name, None, 0.0))
            continue
        tf_value = comparison.tf_value(a) if comparison.tf_value and level == 0 else None
        weight, adjusted = params.weight(level, tf_value)
        total += weight
        evidence.append(FieldEvidence(comparison.name, params.levels[level], weight, adjusted))
    levels = {e.comparison: e.level for e in evidence}
    for rule in model.spec.rules:
        if rule.applies(levels):
            return ScoredPair(total, 1.0, "certain", tuple(evidence), rule.name)
    probability = probability_of(total)
    return ScoredPair(total, probability, model.thresholds.grade(probability), tuple(evidence))


def explain(pair: ScoredPair) -> dict[str, Any]:
    """The evidence of a scored pair as plain JSON-ready data (for the review queue)."""
    return {
        "weight": round(pair.weight, 3),
        "probability": pair.probability,
        "grade": pair.grade,
        "rule": pair.rule,
        "fields": [
            {
                "comparison": e.comparison,
                "level": e.level or "missing",
                "weight": round(e.weight, 3),
                "tfAdjusted": e.tf_adjusted,
            }
            for e in pair.evidence
        ],
    }
