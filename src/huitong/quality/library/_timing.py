"""Predicates about when things happened: order, the future, a life's span, arrival delay.

Times are FHIR date/dateTime/instant values compared as ranges at the precision written
(https://hl7.org/fhir/R4/datatypes.html#dateTime): a check fails only when the ranges say
so for certain, so ``2020`` is never "before" ``2020-06-01``. A time without a zone is read
as UTC; the ``tolerance_hours`` of "not in the future" checks absorbs a sender's local
clock (zones reach ±14 h).

Elements are named in the rule's parameters: ``effective`` (any of ``effectiveDateTime``,
``effectiveInstant``, ``effectivePeriod``…), or ``period.start`` for a sub-element.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from huitong.quality.model import Outcome, ParamValue
from huitong.quality.predicates import (
    PASS,
    Facts,
    InlineSource,
    Runner,
    date_range,
    number,
    predicate,
    specialised,
    text,
)

__all__: list[str] = []

_HOUR = 3_600_000_000
_DAY = 24 * _HOUR


def _where(resource: Mapping[str, Any], key: str) -> str:
    return f"{resource.get('resourceType')}.{key}"


def _days(microseconds: int) -> int:
    return microseconds // _DAY


# The shipped time predicates are factories (see huitong.quality.predicates.specialised):
# their parameters are read once per rule set, not on every resource. Each also comes with
# its inline form for the generated plans (huitong.quality.plan): a resource's rules then
# read the element's time once, with no call per rule. Both forms build their failures with
# the same helpers below, and the plan tests compare the two on every example.


def _failed_at(resource: Mapping[str, Any], found: tuple[str, int, int]) -> Outcome:
    return Outcome(False, _where(resource, found[0]))


def _out_of_order(
    resource: Mapping[str, Any], first: tuple[str, int, int], second: tuple[str, int, int]
) -> Outcome:
    return Outcome(False, _where(resource, second[0]), {"later": second[0], "earlier": first[0]})


def _dates_ordered_inline(params: Mapping[str, ParamValue], src: InlineSource) -> None:
    first, second = src.time(text(params, "earlier")), src.time(text(params, "later"))
    fail, passed = src.bind(_out_of_order), src.bind(PASS)
    src.lines.append(
        f"o = None if {first} is None or {second} is None else "
        f"({fail}(r, {first}, {second}) if {second}[2] < {first}[1] else {passed})"
    )


@specialised("dates-ordered", inline=_dates_ordered_inline)
def dates_ordered(params: Mapping[str, ParamValue]) -> Runner:
    """``params.later`` is not certainly before ``params.earlier`` (end before start)."""
    earlier, later = text(params, "earlier"), text(params, "later")

    def check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
        first = facts.time(earlier)
        second = facts.time(later)
        if first is None or second is None:
            return None
        if second[2] < first[1]:
            return _out_of_order(resource, first, second)
        return PASS

    return check


def _not_in_future_inline(params: Mapping[str, ParamValue], src: InlineSource) -> None:
    found = src.time(text(params, "element"))
    tolerance = int(number(params, "tolerance_hours") * _HOUR)
    fail, passed = src.bind(_failed_at), src.bind(PASS)
    src.lines.append(
        f"o = None if {found} is None else ({fail}(r, {found}) "
        f"if {found}[1] > facts.ctx.now + {tolerance!r} else {passed})"
    )


@specialised("date-not-in-future", inline=_not_in_future_inline)
def date_not_in_future(params: Mapping[str, ParamValue]) -> Runner:
    """The time in ``params.element`` starts no later than now (plus the tolerance)."""
    element = text(params, "element")
    tolerance = int(number(params, "tolerance_hours") * _HOUR)

    def check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
        found = facts.time(element)
        if found is None:
            return None
        if found[1] > facts.ctx.now + tolerance:
            return _failed_at(resource, found)
        return PASS

    return check


# A birth date is a calendar date in an unknown time zone: only a time before its earliest
# possible start (UTC+14) is certainly before the birth.
_EARLIEST_ZONE = 14 * 3_600_000_000


def _not_before_birth_inline(params: Mapping[str, ParamValue], src: InlineSource) -> None:
    found = src.time(text(params, "element"))
    fail, passed = src.bind(_failed_at), src.bind(PASS)
    src.lines += [
        f"if {found} is None:",
        "    o = None",
        "else:",
        "    _ib = facts.birth",  # read only for a resource with the time, as the check does
        f"    o = None if _ib is None else ({fail}(r, {found}) "
        f"if {found}[2] < _ib[0] - {_EARLIEST_ZONE!r} else {passed})",
    ]


@specialised("date-not-before-birth", inline=_not_before_birth_inline)
def date_not_before_birth(params: Mapping[str, ParamValue]) -> Runner:
    """The time in ``params.element`` is not certainly before the subject's birth date."""
    element = text(params, "element")

    def check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
        found = facts.time(element)
        birth = facts.birth if found is not None else None
        if found is None or birth is None:
            return None
        if found[2] < birth[0] - _EARLIEST_ZONE:
            return _failed_at(resource, found)
        return PASS

    return check


def _not_after_death_inline(params: Mapping[str, ParamValue], src: InlineSource) -> None:
    found = src.time(text(params, "element"))
    grace = int(number(params, "grace_days") * _DAY)
    fail, passed = src.bind(_failed_at), src.bind(PASS)
    src.lines += [
        f"if {found} is None:",
        "    o = None",
        "else:",
        "    _id = facts.death",
        f"    o = None if _id is None else ({fail}(r, {found}) "
        f"if {found}[1] > _id[1] + {grace!r} else {passed})",
    ]


@specialised("date-not-after-death", inline=_not_after_death_inline)
def date_not_after_death(params: Mapping[str, ParamValue]) -> Runner:
    """The time in ``params.element`` starts no later than ``params.grace_days`` after the
    subject's recorded date of death."""
    element = text(params, "element")
    grace = int(number(params, "grace_days") * _DAY)

    def check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
        found = facts.time(element)
        death = facts.death if found is not None else None
        if found is None or death is None:
            return None
        if found[1] > death[1] + grace:
            return _failed_at(resource, found)
        return PASS

    return check


def _late_outcomes() -> Callable[[Mapping[str, Any], tuple[str, int, int], int], Outcome]:
    """The failure of a resource ``delay`` µs late. Historical data fails the timeliness
    rule on nearly every resource: outcomes are immutable, so one per (type, element key,
    days late) is shared rather than built each time."""
    late: dict[tuple[Any, str, int], Outcome] = {}

    def outcome(resource: Mapping[str, Any], found: tuple[str, int, int], delay: int) -> Outcome:
        key = (resource.get("resourceType"), found[0], _days(delay))
        shared = late.get(key)
        if shared is None:
            if len(late) >= 1024:
                late.clear()
            shared = late[key] = Outcome(
                False, _where(resource, found[0]), {"delay_days": key[2]}
            )
        return shared

    return outcome


def _arrived_in_time_inline(params: Mapping[str, ParamValue], src: InlineSource) -> None:
    found = src.time(text(params, "element"))
    allowed = int(number(params, "max_delay_days") * _DAY)
    late, passed = src.bind(_late_outcomes()), src.bind(PASS)
    judge = [
        "_ir = _ic.received_at",
        f"_id = (_ir if _ir is not None else _ic.now) - {found}[2]",
        f"o = {passed} if _id <= {allowed!r} else {late}(r, {found}, _id)",
    ]
    if not params.get("judge_backfill"):
        # Before the institution went live: its history, not judged (see arrived_in_time).
        judge = [
            "_il = _ic.live_since",
            f"if _il is not None and {found}[2] < _il:",
            "    o = None",
            "else:",
            *(f"    {line}" for line in judge),
        ]
    src.lines += [
        f"if {found} is None:",
        "    o = None",
        "else:",
        "    _ic = facts.ctx",
        *(f"    {line}" for line in judge),
    ]


@specialised("arrived-in-time", inline=_arrived_in_time_inline)
def arrived_in_time(params: Mapping[str, ParamValue]) -> Runner:
    """The data reached Huitong within ``params.max_delay_days`` of the time in
    ``params.element`` (its end, for a period). An event that ended before the sending
    institution went live (``QualityContext.live_since``) is its history, loaded once at
    onboarding, which can only arrive late: not judged, unless ``params.judge_backfill``."""
    element = text(params, "element")
    allowed = int(number(params, "max_delay_days") * _DAY)
    judge_backfill = bool(params.get("judge_backfill"))
    late = _late_outcomes()

    def check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
        found = facts.time(element)
        if found is None:
            return None
        ctx = facts.ctx
        if not judge_backfill:
            live = ctx.live_since
            if live is not None and found[2] < live:
                return None
        received = ctx.received_at
        delay = (received if received is not None else ctx.now) - found[2]
        if delay <= allowed:
            return PASS
        return late(resource, found, delay)

    return check


@specialised("duration-at-most")
def duration_at_most(params: Mapping[str, ParamValue]) -> Runner:
    """A period in ``params.element`` with both ends lasts at most ``params.max_days``."""
    element = text(params, "element")
    longest = int(number(params, "max_days") * _DAY)

    def check(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
        period = resource.get(element)
        if not isinstance(period, dict):
            return None
        start, end = date_range(period.get("start")), date_range(period.get("end"))
        if start is None or end is None:
            return None
        length = end[0] - start[1]
        if length > longest:
            return Outcome(False, _where(resource, element), {"days": _days(length)})
        return PASS

    return check


@predicate("patient-age-plausible")
def patient_age_plausible(
    resource: Mapping[str, Any], facts: Facts, params: Mapping[str, ParamValue]
) -> Outcome | None:
    """A living patient's birth date is at most ``params.max_age_years`` before now."""
    birth = date_range(resource.get("birthDate"))
    if birth is None:
        return None
    if resource.get("deceasedBoolean") is True or "deceasedDateTime" in resource:
        return None
    age_days = _days(facts.ctx.now - birth[1])
    if age_days > number(params, "max_age_years") * 365.25:
        return Outcome(False, "Patient.birthDate", {"age": int(age_days // 365.25)})
    return PASS


@predicate("patient-deceased-after-birth")
def patient_deceased_after_birth(
    resource: Mapping[str, Any], facts: Facts, params: Mapping[str, ParamValue]
) -> Outcome | None:
    """``deceasedDateTime`` is not certainly before ``birthDate``."""
    birth = date_range(resource.get("birthDate"))
    death = date_range(resource.get("deceasedDateTime"))
    if birth is None or death is None:
        return None
    if death[1] < birth[0]:
        return Outcome(False, "Patient.deceasedDateTime")
    return PASS
