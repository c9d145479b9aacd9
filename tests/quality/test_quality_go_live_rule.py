"""The arrived-in-time rule and the sending institution's go-live (``live_since``): an event
that ended before it is history, not judged, unless ``judge_backfill``; the generated plan
answers as the rule's own closure does."""

from __future__ import annotations

from typing import Any

import pytest

from huitong.quality import Facts, InMemoryContext, RuleSet
from huitong.quality.library import default_rules

DAY = 86_400_000_000
NOW = 1_795_000_000_000_000  # 2026-11-18
RULE = "observation.arrived-in-time"


def _observation(days_ago: int) -> dict[str, Any]:
    from huitong.fhir.dates import format_instant

    return {"resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "effectiveDateTime": format_instant(NOW - days_ago * DAY)}  # fmt: skip


def _verdict(rules: RuleSet, resource: dict[str, Any], ctx: InMemoryContext) -> Any:
    """The rule's verdict (None: not applicable, else passed) by the plan, checked against
    the rule-by-rule reference walk."""
    plan = rules.plan("Observation")
    assert plan is not None
    generated = plan.run(resource, Facts(resource, ctx))
    assert generated == plan.run_reference(resource, Facts(resource, ctx))
    index = next(i for i, c in enumerate(plan.rules) if c.rule.id == RULE)
    mask, failures = generated
    if not mask >> index & 1:
        return None
    return not any(i == index for i, _ in failures or ())


def _rules(**params: Any) -> RuleSet:
    rules = [r for r in default_rules() if r.id == RULE]
    if params:
        return RuleSet.from_config({"rules": {RULE: {"params": params}}}, rules)
    return RuleSet(rules)


@pytest.mark.parametrize(("days_ago", "live_days_ago", "expected"), [
    (60, None, False),   # no go-live known: judged, late
    (10, None, True),    # judged, in time
    (60, 30, None),      # ended before go-live: history, not judged
    (400, 1, None),
    (60, 90, False),     # after go-live and 60 days late: judged, late
    (10, 90, True),      # after go-live and in time
    (60, 60, False),     # ended at the go-live instant: not before it, judged
])  # fmt: skip
def test_history_before_go_live_is_not_judged(
    days_ago: int, live_days_ago: int | None, expected: bool | None
) -> None:
    live = None if live_days_ago is None else NOW - live_days_ago * DAY
    ctx = InMemoryContext(now=NOW, received_at=NOW, live_since=live)
    assert _verdict(_rules(), _observation(days_ago), ctx) is expected


@pytest.mark.parametrize(("days_ago", "expected"), [(60, False), (10, True), (400, False)])
def test_judge_backfill_judges_history_too(days_ago: int, expected: bool) -> None:
    ctx = InMemoryContext(now=NOW, received_at=NOW, live_since=NOW)
    assert _verdict(_rules(judge_backfill=True), _observation(days_ago), ctx) is expected


def test_every_shipped_timeliness_rule_can_judge_backfill() -> None:
    timely = [r for r in default_rules() if r.id.endswith(".arrived-in-time")]
    assert len(timely) >= 4
    assert all(r.params.get("judge_backfill") is False for r in timely)
