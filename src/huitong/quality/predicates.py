"""Checks written in Python, registered by name.

A predicate is a function ``(resource, facts, params) -> Outcome | None``: None when the rule
does not apply to this resource (nothing to check), otherwise an :class:`Outcome` saying
whether it passed, where the problem is and the values its message shows. Predicates are
pure: everything outside the resource comes through :class:`Facts` (which wraps the
:class:`~huitong.quality.context.QualityContext` and memoises what several rules ask for)
and every tunable number through ``params``.

Register with the decorator::

    @predicate("observation-quantity-in-range")
    def _in_range(resource, facts, params): ...

and refer to it from a rule with ``PredicateCheck("observation-quantity-in-range")``. A
predicate on the write path of every resource may instead be registered as a factory with
:func:`specialised`: ``factory(params)`` reads and checks the rule's parameters once, when
the rule set is built, and returns the check ``(resource, facts) -> Outcome | None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from huitong.fhir.dates import parse_date_range
from huitong.quality.context import QualityContext, Subject
from huitong.quality.model import Outcome, ParamValue

__all__ = [
    "NOT_LOOKED_UP",
    "PASS",
    "Facts",
    "InlineSource",
    "Inliner",
    "Predicate",
    "codes",
    "date_range",
    "element_time",
    "number",
    "plain_predicate",
    "predicate",
    "predicate_gate",
    "predicate_inliner",
    "predicate_runner",
    "registered_predicates",
    "specialised",
    "subject_reference",
    "text",
    "time_reader",
]

PASS = Outcome(True)

# Where each resource type names its patient: the Patient compartment's parameters,
# https://hl7.org/fhir/R4/compartmentdefinition-patient.html.
_SUBJECT_ELEMENT = {
    "Observation": "subject",
    "Condition": "subject",
    "Encounter": "subject",
    "MedicationRequest": "subject",
    "DiagnosticReport": "subject",
    "Procedure": "subject",
    "AllergyIntolerance": "patient",
    "Immunization": "patient",
}


def subject_reference(resource: Mapping[str, Any]) -> str | None:
    """``Patient/<id>`` the resource is about (the Patient itself for a Patient), or None
    when it names no patient by a literal relative reference."""
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        rid = resource.get("id")
        return f"Patient/{rid}" if isinstance(rid, str) else None
    element = _SUBJECT_ELEMENT.get(rtype) if isinstance(rtype, str) else None
    ref = resource.get(element) if element else None
    text = ref.get("reference") if isinstance(ref, dict) else None
    if isinstance(text, str) and text.startswith("Patient/") and "/" not in text[8:]:
        return text
    return None


_DAY = 86_400_000_000
_UNIX_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


def date_range(value: Any) -> tuple[int, int] | None:
    """A FHIR date/dateTime/instant string as inclusive epoch-microsecond bounds, or None.

    The two shapes feeds send most (``YYYY-MM-DD`` and a dateTime to the second with a
    zone) take the C parser; everything else, and anything it refuses, goes through
    :func:`huitong.fhir.dates.parse_date_range`, whose answer is the contract. Answers are
    memoised: one resource's rules ask for the same few times again and again.
    """
    return _date_range(value) if isinstance(value, str) else None


@lru_cache(maxsize=4096)
def _date_range(value: str) -> tuple[int, int] | None:
    n = len(value)
    try:
        if n == 10 and value[4] == "-" and value[7] == "-":
            lo = (date.fromisoformat(value).toordinal() - _UNIX_EPOCH_ORDINAL) * _DAY
            return lo, lo + _DAY - 1
        if n >= 20 and value[10] == "T" and (value[-1] == "Z" or value[-6] in "+-"):
            width = 1_000_000
            if value[19] == ".":
                digits = (n - 1 if value[-1] == "Z" else n - 6) - 20
                if not 1 <= digits <= 6:
                    raise ValueError(value)
                width = 10 ** (6 - digits)
            elif n not in (20, 25):
                raise ValueError(value)
            offset = 0
            if value[-1] != "Z":
                offset = int(value[-5:-3]) * 3600 + int(value[-2:]) * 60
                if offset > 50_400:
                    raise ValueError(value)  # zones reach ±14:00
                if value[-6] == "-":
                    offset = -offset
            t = datetime.fromisoformat(value)
            seconds = (t.toordinal() - _UNIX_EPOCH_ORDINAL) * 86_400
            seconds += t.hour * 3600 + t.minute * 60 + t.second - offset
            lo = seconds * 1_000_000 + t.microsecond
            return lo, lo + width - 1
    except ValueError:
        pass
    try:
        return parse_date_range(value)
    except ValueError:
        return None


_CHOICE_SUFFIXES = ("DateTime", "Instant", "Date", "Period")


def element_time(resource: Mapping[str, Any], spec: str) -> tuple[str, int, int] | None:
    """``(key written, lo, hi)`` of the time in element ``spec``, or None when absent.

    ``spec`` is ``name`` (a plain date element, a Period, or a choice ``name[x]``) or
    ``name.sub``. A Period spans from its start's lower bound to its end's upper bound (an
    open end is the start's upper bound, so "before" checks stay certain).
    """
    return time_reader(spec)(resource)


TimeReader = Callable[[Mapping[str, Any]], "tuple[str, int, int] | None"]
_READERS: dict[str, TimeReader] = {}


def time_reader(spec: str) -> TimeReader:
    """:func:`element_time` of one ``spec`` as a function of the resource alone, with the
    dispatch on the spec's shape (nested, plain, its choice keys) done once: a generated plan
    reads each element's time this way, on every resource of its type (and
    :func:`element_time` is this reader, found by its spec)."""
    found = _READERS.get(spec)
    if found is not None:
        return found
    if "." in spec:
        head, sub = spec.split(".", 1)

        def nested(resource: Mapping[str, Any]) -> tuple[str, int, int] | None:
            container = resource.get(head)
            if isinstance(container, dict):
                bounds = date_range(container.get(sub))
                if bounds is not None:
                    return spec, bounds[0], bounds[1]
            return None

        reader: TimeReader = nested
    else:
        choices = tuple((spec + suffix, suffix == "Period") for suffix in _CHOICE_SUFFIXES)

        def plain(resource: Mapping[str, Any]) -> tuple[str, int, int] | None:
            value = resource.get(spec)
            if isinstance(value, str):
                bounds = _date_range(value)
                return (spec, bounds[0], bounds[1]) if bounds else None
            if isinstance(value, dict):
                return _period(spec, value)
            for key, is_period in choices:
                value = resource.get(key)
                if value is None:
                    continue
                if is_period:
                    return _period(key, value) if isinstance(value, dict) else None
                bounds = date_range(value)
                return (key, bounds[0], bounds[1]) if bounds else None
            return None

        reader = plain
    _READERS[spec] = reader
    return reader


def _period(key: str, period: Mapping[str, Any]) -> tuple[str, int, int] | None:
    start, end = date_range(period.get("start")), date_range(period.get("end"))
    if start is not None:
        return key, start[0], end[1] if end is not None else start[1]
    if end is not None:
        return key, end[0], end[1]
    return None


_UNSEEN: Any = object()
# Facts.reset's subject when the caller has not looked it up.
NOT_LOOKED_UP: Any = object()
# A subject's birth and death as bounds (see Facts.birth).
_Life = tuple[tuple[int, int] | None, tuple[int, int] | None]


@lru_cache(maxsize=4096)
def _life_of(
    birth: str | None, deceased: str | bool | None
) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """A subject's birth and death as bounds (one lookup for the many resources of one
    patient a bundle carries, instead of two)."""
    return date_range(birth), date_range(deceased)


class Facts:
    """One resource's view of the outside world during one evaluation, memoised.

    ``subject`` is read from the resource itself for a Patient, otherwise asked of the
    context once, only if a rule needs it.
    """

    __slots__ = ("_last", "_life", "_subject", "_subject_done", "_times", "ctx", "memo",
                 "resource")  # fmt: skip

    def __init__(self, resource: Mapping[str, Any], ctx: QualityContext) -> None:
        self.resource = resource
        self.ctx = ctx
        self._subject: Subject | None = None
        self._subject_done = False
        self._times: dict[str, tuple[str, int, int] | None] = {}
        self._life: tuple[tuple[int, int] | None, tuple[int, int] | None] | None = None
        # The last subject whose life ranges were computed, and them: the resources of a
        # transaction (one Facts, reset for each) are mostly about one patient, and a
        # Subject is frozen, so the same object has the same ranges.
        self._last: tuple[Subject, _Life] | None = None
        # Values several predicates derive from the same resource, keyed by the deriving
        # function's name (and its inputs); lives as long as this one evaluation.
        self.memo: dict[Any, Any] = {}

    def reset(
        self, resource: Mapping[str, Any], ctx: QualityContext, subject: Any = NOT_LOOKED_UP
    ) -> None:
        """Start over for another resource (the write path keeps one Facts per transaction
        rather than allocating one per resource). ``subject``: the resource's subject
        (a Subject, or None for none) when the caller has looked it up already."""
        self.resource = resource
        self.ctx = ctx
        if subject is NOT_LOOKED_UP:
            self._subject = None
            self._subject_done = False
        else:
            self._subject = subject
            self._subject_done = True
        if self._times:
            self._times.clear()
        self._life = None
        if self.memo:
            self.memo.clear()

    @property
    def birth(self) -> tuple[int, int] | None:
        """The subject's birth date as epoch-microsecond bounds, if known."""
        life = self._life
        return (life if life is not None else self._life_ranges())[0]

    @property
    def death(self) -> tuple[int, int] | None:
        """The subject's recorded time of death as bounds (None if alive or unknown)."""
        life = self._life
        return (life if life is not None else self._life_ranges())[1]

    def _life_ranges(self) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        if self._life is None:
            subject = self._subject if self._subject_done else self.subject
            if subject is None:
                self._life = (None, None)
            else:
                last = self._last
                if last is not None and last[0] is subject:
                    self._life = last[1]
                else:
                    self._life = _life_of(subject.birth_date, subject.deceased)
                    self._last = (subject, self._life)
        return self._life

    @property
    def times(self) -> dict[str, tuple[str, int, int] | None]:
        """The element times computed so far (by :meth:`time`, or by a generated plan,
        which reads them with :func:`time_reader` and puts them here for the checks it
        calls)."""
        return self._times

    def time(self, spec: str) -> tuple[str, int, int] | None:
        """:func:`element_time` of the resource, computed once per element."""
        found = self._times.get(spec, _UNSEEN)
        if found is _UNSEEN:
            found = self._times[spec] = element_time(self.resource, spec)
        return found  # type: ignore[return-value]

    @property
    def subject(self) -> Subject | None:
        if not self._subject_done:
            self._subject_done = True
            if self.resource.get("resourceType") == "Patient":
                self._subject = Subject.from_patient(self.resource)
            else:
                ref = subject_reference(self.resource)
                self._subject = self.ctx.subject(ref) if ref is not None else None
        return self._subject


def number(params: Mapping[str, ParamValue], name: str) -> float:
    """A numeric rule parameter (configuration validation keeps kinds, so a wrong kind here
    is a bug in a rule definition)."""
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"parameter {name!r} must be a number")
    return float(value)


def text(params: Mapping[str, ParamValue], name: str) -> str:
    """A text rule parameter."""
    value = params[name]
    if not isinstance(value, str):
        raise TypeError(f"parameter {name!r} must be text")
    return value


def codes(params: Mapping[str, ParamValue], name: str) -> tuple[str, ...]:
    """A code-list rule parameter."""
    value = params[name]
    if not isinstance(value, tuple):
        raise TypeError(f"parameter {name!r} must be a list of codes")
    return value


Predicate = Callable[[Mapping[str, Any], Facts, Mapping[str, ParamValue]], Outcome | None]
# A predicate with one rule's parameters applied (see specialised).
Runner = Callable[[Mapping[str, Any], Facts], Outcome | None]
Factory = Callable[[Mapping[str, ParamValue]], Runner]


class InlineSource:
    """What a generated plan needs to run a check inline, without calling it.

    ``lines`` are Python statements (no indentation of their own) that leave the check's
    answer in ``o``: the same Outcome or None the factory's check returns. They may read
    ``r`` (the resource), ``facts``, a name :meth:`time` gave (the element's time, the value
    of ``facts.time(spec)``) and names :meth:`bind` gave; they assign nothing but ``o`` and
    names starting with ``_i`` (their own scratch). The plan computes each time named once
    per resource, before its first rule, and shares it between the rules that read it; the
    same for each element's single coding (:meth:`coding`).
    """

    __slots__ = ("_bind", "_codings", "_times", "lines")
    # True for the source of a plan's ``run_valid`` (huitong.quality.plan.ValidatedSource):
    # an inliner may then write its check for a resource that passed validation.
    validated = False

    def __init__(
        self,
        bind: Callable[[Any], str],
        times: dict[str, str],
        codings: dict[str, str] | None = None,
    ) -> None:
        self._bind = bind
        self._times = times
        self._codings = {} if codings is None else codings
        self.lines: list[str] = []

    def bind(self, obj: Any) -> str:
        """A name for ``obj`` in the generated source."""
        return self._bind(obj)

    def time(self, spec: str) -> str:
        """The name holding ``facts.time(spec)`` for the resource being checked."""
        name = self._times.get(spec)
        if name is None:
            name = self._times[spec] = f"_t{len(self._times)}"
        return name

    def coding(self, key: str) -> str:
        """The name holding ``(system, code)`` of the resource's element ``key`` in its
        usual shape, one CodeableConcept object whose ``coding`` is a list of exactly one
        object with a string ``system`` and a string ``code``; None for any other shape
        (the reads every coded element's checks begin with, done once per resource)."""
        name = self._codings.get(key)
        if name is None:
            name = self._codings[key] = f"_c{len(self._codings)}"
        return name


# Writes a check's inline statements for one rule's parameters (see InlineSource).
Inliner = Callable[[Mapping[str, ParamValue], InlineSource], None]

_REGISTRY: dict[str, Predicate] = {}
_GATES: dict[str, tuple[str, str]] = {}
_FACTORIES: dict[str, tuple[Predicate, Factory]] = {}
_INLINERS: dict[str, Inliner] = {}


def predicate(
    name: str, *, gate: tuple[str, str] | None = None
) -> Callable[[Predicate], Predicate]:
    """Register a predicate under ``name``; a second registration of a name is a bug.

    ``gate`` = ``(system, param)`` declares that the predicate can only apply to a resource
    whose ``code`` (or a ``component.code``) carries a coding of ``system`` with a code
    listed in the rule parameter ``param``. The engine then runs it only for such
    resources, found by one dictionary lookup per code instead of one call per rule.
    """

    def register(fn: Predicate) -> Predicate:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"predicate {name!r} is already registered")
        _REGISTRY[name] = fn
        if gate is not None:
            _GATES[name] = gate
        return fn

    return register


def specialised(
    name: str, *, gate: tuple[str, str] | None = None, inline: Inliner | None = None
) -> Callable[[Factory], Factory]:
    """Register a predicate given as a factory of checks: ``factory(params)`` reads the
    rule's parameters once and returns ``check(resource, facts)``. The predicate is also
    registered under ``name`` in the ordinary form (``gate`` as for :func:`predicate`).

    ``inline``, when given, writes the same check as source for a generated plan (see
    :class:`InlineSource`): the plan then runs it without a call, and shares the element
    times it reads with the type's other time rules. The factory's check stays the
    reference the inline form is tested against."""

    def register(factory: Factory) -> Factory:
        def ordinary(
            resource: Mapping[str, Any], facts: Facts, params: Mapping[str, ParamValue]
        ) -> Outcome | None:
            return factory(params)(resource, facts)

        ordinary.__doc__ = factory.__doc__
        predicate(name, gate=gate)(ordinary)
        _FACTORIES[name] = (ordinary, factory)
        if inline is not None:
            _INLINERS[name] = inline
        return factory

    return register


def predicate_inliner(name: str) -> Inliner | None:
    """The inline writer of predicate ``name`` (None: it runs as a call), only while the
    name is registered as the factory that came with it."""
    fn = _REGISTRY.get(name)
    special = _FACTORIES.get(name)
    if fn is None or special is None or special[0] is not fn:
        return None
    return _INLINERS.get(name)


def predicate_runner(name: str, params: Mapping[str, ParamValue]) -> Runner | None:
    """The check of predicate ``name`` with ``params`` applied (None: not registered)."""
    fn = _REGISTRY.get(name)
    if fn is None:
        return None
    special = _FACTORIES.get(name)
    if special is not None and special[0] is fn:
        return special[1](params)

    def run(resource: Mapping[str, Any], facts: Facts) -> Outcome | None:
        return fn(resource, facts, params)

    return run


def plain_predicate(name: str) -> Predicate | None:
    """The registered function of predicate ``name`` when it takes its parameters on every
    call (None: a factory's, or not registered); a generated plan calls it directly."""
    fn = _REGISTRY.get(name)
    special = _FACTORIES.get(name)
    return None if fn is None or (special is not None and special[0] is fn) else fn


def registered_predicates() -> Mapping[str, Predicate]:
    """Every registered predicate by name (the shipped ones are registered on import of
    :mod:`huitong.quality.library`)."""
    return dict(_REGISTRY)


def predicate_gate(name: str) -> tuple[str, str] | None:
    """The ``(system, param)`` code gate a predicate was registered with, if any."""
    return _GATES.get(name)
