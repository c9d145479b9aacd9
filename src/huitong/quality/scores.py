"""Quality scores: pass rates per institution, per category, per rule and per month.

A *check* is one rule applied to one resource. The pass rate of any group of checks is
``1 - failed / applicable`` (the Data Quality Dashboard's definition: only checks that
applied count, so a rule about blood pressure does not raise an immunization registry's
score). The write path turns each :class:`~huitong.quality.model.Assessment` into
:class:`CheckCount` rows (:func:`count_checks`), which add up: a store can keep one row per
institution × month × rule and increment it. :func:`build_report` reads such rows and
returns a :class:`QualityReport` (data only; :mod:`huitong.quality.report` renders it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from huitong.quality.model import Assessment, Category, Rule, Severity, format_message
from huitong.quality.ruleset import RuleSet

__all__ = [
    "CheckCount",
    "MonthScore",
    "QualityReport",
    "RuleScore",
    "Score",
    "Tally",
    "build_report",
    "count_checks",
    "month_of",
]


@dataclass(frozen=True, slots=True)
class Score:
    """How many checks applied and how many failed."""

    applicable: int = 0
    failed: int = 0

    @property
    def passed(self) -> int:
        return self.applicable - self.failed

    @property
    def pass_rate(self) -> float | None:
        """``1 - failed / applicable``; None when nothing applied (no score, not 100 %)."""
        return None if self.applicable == 0 else 1 - self.failed / self.applicable

    def __add__(self, other: Score) -> Score:
        return Score(self.applicable + other.applicable, self.failed + other.failed)


@dataclass(frozen=True, slots=True)
class CheckCount:
    """Checks of one rule on one institution's data in one month."""

    organization: str
    month: str  # "YYYY-MM"
    rule_id: str
    category: Category
    applicable: int
    failed: int


def month_of(microseconds: int, utc_offset_minutes: int = 0) -> str:
    """The ``YYYY-MM`` a time falls in, on a clock ``utc_offset_minutes`` ahead of UTC
    (480 for China Standard Time)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=microseconds, minutes=utc_offset_minutes
    )
    return f"{moment.year:04d}-{moment.month:02d}"


def count_checks(
    assessment: Assessment, ruleset: RuleSet, organization: str, month: str
) -> list[CheckCount]:
    """One row per rule that applied to the assessed resource (``failed`` 1 if it failed)."""
    failed = {f.rule_id for f in assessment.findings}
    return [
        CheckCount(
            organization,
            month,
            rule_id,
            ruleset.rule(rule_id).category,
            1,
            1 if rule_id in failed else 0,
        )
        for rule_id in assessment.applicable
    ]


class Tally:
    """Adds up check counts in memory, keyed by institution × month × rule."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, str], list[int]] = {}
        self._categories: dict[str, Category] = {}

    def add(self, counts: Iterable[CheckCount]) -> None:
        for c in counts:
            slot = self._counts.setdefault((c.organization, c.month, c.rule_id), [0, 0])
            slot[0] += c.applicable
            slot[1] += c.failed
            self._categories[c.rule_id] = c.category

    def add_assessment(
        self, assessment: Assessment, ruleset: RuleSet, organization: str, month: str
    ) -> None:
        self.add(count_checks(assessment, ruleset, organization, month))

    def rows(self) -> list[CheckCount]:
        return [
            CheckCount(org, month, rule_id, self._categories[rule_id], a, f)
            for (org, month, rule_id), (a, f) in sorted(self._counts.items())
        ]


@dataclass(frozen=True, slots=True)
class RuleScore:
    """One rule's record over the report's scope."""

    rule_id: str
    category: Category
    severity: Severity | None  # None for a rule the current rule set does not know
    message_en: str
    message_zh: str
    score: Score


@dataclass(frozen=True, slots=True)
class MonthScore:
    """One month of the trend: the overall score, per category, and the change in pass
    rate from the month before (None for the first month or when either has no score)."""

    month: str
    score: Score
    categories: Mapping[Category, Score]
    change: float | None


@dataclass(frozen=True, slots=True)
class QualityReport:
    """Everything a quality report shows, as data.

    ``organization`` / ``month`` are the scope (None: all institutions / all months);
    ``trend`` covers up to ``trend_months`` months ending at ``month`` (or the latest
    month with data) for the same institutions, so a report for one month still shows the
    direction of travel. ``worst_rules`` are the rules with the most failures in scope.
    """

    region: str | None
    organization: str | None
    month: str | None
    generated_at: str
    overall: Score
    categories: Mapping[Category, Score]
    organizations: Mapping[str, Score]
    trend: tuple[MonthScore, ...]
    worst_rules: tuple[RuleScore, ...]
    rules_checked: int = field(default=0)


def _sum(rows: Iterable[CheckCount]) -> Score:
    applicable = failed = 0
    for r in rows:
        applicable += r.applicable
        failed += r.failed
    return Score(applicable, failed)


def _by_category(rows: list[CheckCount]) -> dict[Category, Score]:
    return {c: _sum(r for r in rows if r.category is c) for c in Category}


def build_report(
    counts: Iterable[CheckCount],
    *,
    generated_at: str,
    rules: RuleSet | Mapping[str, Rule] | None = None,
    organization: str | None = None,
    month: str | None = None,
    region: str | None = None,
    worst: int = 10,
    trend_months: int = 6,
) -> QualityReport:
    """Aggregate check counts into a report scoped to ``organization`` and ``month``.

    ``rules`` supplies messages and severities for the worst-rules table (rule ids it does
    not know are listed by id). ``generated_at`` is passed in (an instant string) so the
    report is reproducible.
    """
    all_rows = [c for c in counts if organization is None or c.organization == organization]
    scoped = [c for c in all_rows if month is None or c.month == month]

    months = sorted({c.month for c in all_rows if month is None or c.month <= month})
    months = months[-trend_months:] if trend_months > 0 else []
    trend: list[MonthScore] = []
    previous: float | None = None
    for m in months:
        rows = [c for c in all_rows if c.month == m]
        score = _sum(rows)
        rate = score.pass_rate
        change = None if rate is None or previous is None else rate - previous
        trend.append(MonthScore(m, score, _by_category(rows), change))
        previous = rate

    per_rule: dict[str, list[CheckCount]] = {}
    for c in scoped:
        per_rule.setdefault(c.rule_id, []).append(c)
    rule_scores = [
        _rule_score(rule_id, rows[0].category, _sum(rows), rules)
        for rule_id, rows in per_rule.items()
    ]
    failing = [r for r in rule_scores if r.score.failed]
    failing.sort(key=lambda r: (-r.score.failed, r.score.pass_rate or 0.0, r.rule_id))

    organizations: dict[str, Score] = {}
    for c in scoped:
        organizations[c.organization] = organizations.get(c.organization, Score()) + Score(
            c.applicable, c.failed
        )
    if region is None and isinstance(rules, RuleSet):
        region = rules.region
    return QualityReport(
        region=region,
        organization=organization,
        month=month,
        generated_at=generated_at,
        overall=_sum(scoped),
        categories=_by_category(scoped),
        organizations=dict(sorted(organizations.items())),
        trend=tuple(trend),
        worst_rules=tuple(failing[:worst]),
        rules_checked=len(per_rule),
    )


def _rule_score(
    rule_id: str,
    category: Category,
    score: Score,
    rules: RuleSet | Mapping[str, Rule] | None,
) -> RuleScore:
    rule: Rule | None = None
    if isinstance(rules, RuleSet):
        rule = rules.rule(rule_id) if rule_id in rules else None
    elif rules is not None:
        rule = rules.get(rule_id)
    if rule is None:
        return RuleScore(rule_id, category, None, rule_id, rule_id, score)
    return RuleScore(
        rule_id,
        category,
        rule.severity,
        _summary(rule.message_en, rule.params),
        _summary(rule.message_zh, rule.params),
        score,
    )


_PLACEHOLDER = re.compile(r"\{[A-Za-z_]+\}")


def _summary(template: str, params: Mapping[str, object]) -> str:
    """A rule's message with its parameters filled and per-finding values elided."""
    return _PLACEHOLDER.sub("…", format_message(template, params))
