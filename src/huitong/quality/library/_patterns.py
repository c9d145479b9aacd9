"""Rule shapes that recur across resource types, so each rule table reads as a list of facts.

Every helper returns a plain :class:`~huitong.quality.model.Rule`; nothing here is special
to the engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from huitong.quality.model import (
    Category,
    ExpressionCheck,
    ParamValue,
    PredicateCheck,
    Rule,
    Severity,
)

__all__ = [
    "REJECT",
    "WARN",
    "arrived_in_time",
    "coded",
    "dates_ordered",
    "not_after_death",
    "not_before_birth",
    "not_in_future",
    "present",
    "rule",
    "slug",
]

REJECT, WARN = Severity.REJECT, Severity.WARN

# Clinical statuses under which a record describes something that has happened.
HAPPENED = "status = 'final' or status = 'amended' or status = 'corrected'"


def slug(element: str) -> str:
    """The id fragment for an element: ``period.start`` -> ``start``, ``authoredOn`` ->
    ``authored-on``."""
    last = element.rsplit(".", 1)[-1]
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", last).lower()


def rule(
    rule_id: str,
    category: Category,
    severity: Severity,
    rtype: str,
    en: str,
    zh: str,
    check: ExpressionCheck | PredicateCheck,
    params: Mapping[str, ParamValue] | None = None,
    *,
    enabled: bool = True,
) -> Rule:
    return Rule(rule_id, category, severity, (rtype,), en, zh, check, params or {}, enabled)


def present(
    rtype: str,
    path: str,
    zh_name: str,
    severity: Severity,
    *,
    name: str | None = None,
    when: str | None = None,
    category: Category = Category.COMPLETENESS,
) -> Rule:
    """``<Type>.<path>`` must be present (when ``when`` holds)."""
    name = name or slug(path)
    condition_en = "" if when is None else f" when {when}"
    condition_zh = "" if when is None else f"（条件：{when}）"
    return rule(
        f"{rtype.lower()}.{name}-present",
        category,
        severity,
        rtype,
        f"{rtype}.{path} is missing{condition_en}.",
        f"{rtype}.{path}（{zh_name}）缺失{condition_zh}。",
        ExpressionCheck(f"{path}.exists()", when=when, expression=f"{rtype}.{path}"),
    )


def coded(
    rtype: str, element: str, zh_name: str, severity: Severity, *, required: bool = False
) -> Rule:
    """``<Type>.<element>`` (a top-level CodeableConcept) carries a coding with both system
    and code. With ``required`` False the rule applies only when the element is present (its
    absence is a completeness rule's business)."""
    return rule(
        f"{rtype.lower()}.{slug(element)}-coded",
        Category.CONFORMANCE,
        severity,
        rtype,
        f"{rtype}.{element} has no coding with both a code system and a code.",
        f"{rtype}.{element}（{zh_name}）缺少同时含编码系统和代码的编码。",
        PredicateCheck("has-coding"),
        {"element": element, "required": required},
    )


def not_before_birth(
    rtype: str, element: str, zh_name: str, severity: Severity = WARN, *, name: str = ""
) -> Rule:
    # Warn by default: source systems date birth encounters and back-entered histories
    # loosely, and refusing them would lose real data; regions may make it a rejection.
    return rule(
        f"{rtype.lower()}.{name or slug(element)}-not-before-birth",
        Category.CONSISTENCY,
        severity,
        rtype,
        f"{rtype}.{element} is before the patient's date of birth.",
        f"{rtype}.{element}（{zh_name}）早于患者出生日期。",
        PredicateCheck("date-not-before-birth"),
        {"element": element},
    )


def not_after_death(rtype: str, element: str, zh_name: str, grace_days: int = 2) -> Rule:
    return rule(
        f"{rtype.lower()}.{slug(element)}-not-after-death",
        Category.CONSISTENCY,
        WARN,
        rtype,
        f"{rtype}.{element} is more than {{grace_days}} days after the patient's death.",
        f"{rtype}.{element}（{zh_name}）晚于患者死亡日期超过 {{grace_days}} 天。",
        PredicateCheck("date-not-after-death"),
        {"element": element, "grace_days": grace_days},
    )


def not_in_future(
    rtype: str,
    element: str,
    zh_name: str,
    severity: Severity = WARN,
    *,
    when: str | None = None,
) -> Rule:
    return rule(
        f"{rtype.lower()}.{slug(element)}-not-in-future",
        Category.PLAUSIBILITY,
        severity,
        rtype,
        f"{rtype}.{element} is in the future.",
        f"{rtype}.{element}（{zh_name}）是未来的时间。",
        PredicateCheck("date-not-in-future", when=when),
        # Zones reach ±14 h, and a date-only value starts at midnight UTC.
        {"element": element, "tolerance_hours": 14},
    )


def dates_ordered(
    rule_id: str,
    rtype: str,
    earlier: str,
    later: str,
    zh_earlier: str,
    zh_later: str,
    severity: Severity = WARN,
) -> Rule:
    return rule(
        rule_id,
        Category.CONSISTENCY,
        severity,
        rtype,
        f"{rtype}.{later} is before {rtype}.{earlier}.",
        f"{rtype}.{later}（{zh_later}）早于 {rtype}.{earlier}（{zh_earlier}）。",
        PredicateCheck("dates-ordered"),
        {"earlier": earlier, "later": later},
    )


def arrived_in_time(rtype: str, element: str, max_delay_days: int) -> Rule:
    return rule(
        f"{rtype.lower()}.arrived-in-time",
        Category.TIMELINESS,
        WARN,
        rtype,
        f"{rtype} arrived {{delay_days}} days after {rtype}.{element} "
        f"(allowed: {{max_delay_days}} days).",
        f"{rtype} 在 {rtype}.{element} 之后 {{delay_days}} 天才送达"
        "（允许 {max_delay_days} 天）。",
        PredicateCheck("arrived-in-time"),
        # judge_backfill: also judge events from before the institution went live.
        {"element": element, "max_delay_days": max_delay_days, "judge_backfill": False},
    )
