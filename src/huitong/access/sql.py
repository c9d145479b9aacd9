"""Access constraints compiled to SQL: the condition the store ANDs onto every resource row.

:func:`compile_constraint` turns one :mod:`huitong.access.constraints` tree into a
:data:`~huitong.store.search_sql.Restrict` — a function of a ``resources`` alias returning
``(condition, params)`` with ``?`` placeholders — so the store's search, count, include,
``_has``, chain, ``$everything``, read and history statements all filter inside the query
(issue 5, "Authorization"). :func:`compile_by_type` combines the decisions for every resource
type into one condition, because one request touches several types (an ``_include`` of the
Patient, ``$everything``).

The facts come from the search index, which holds rows of current, live versions only:

- the patient of a row is ``patient_key`` (its Patient compartment; NULL for shared
  resources, so a patient-based leaf never admits them);
- registered at an organization: ``Patient.managingOrganization`` (``organization``), seen
  there: an Encounter whose ``serviceProvider`` is it (``service-provider``);
- a referral: an ``active`` ServiceRequest whose ``performer`` is the practitioner or the
  organization and whose ``occurrence`` (if any) contains the time;
- a consent (https://hl7.org/fhir/R4/consent.html): an ``active`` Consent with scope
  ``patient-privacy``, the requester among the ``actor`` references (``actor`` search
  parameter = ``provision.actor.reference``), ``period`` containing the time, and a root
  provision of type ``permit`` whose ``class`` (if any) names the row's type, whose
  ``action`` (if any) includes ``access``/``use``, whose ``securityLabel`` (if any) is on the
  row, with no nested provisions and none of the conditions Huitong does not evaluate. This
  is narrower than :func:`huitong.access.consent.evaluate_consents` (which also follows
  nested exceptions): a search never shows more than a read of the same resource allows.
  Any active deny consent naming the requester (or no actor) excludes the patient.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from huitong.access.constraints import (
    AllOf,
    AnyOf,
    BreakGlassPatient,
    ConsentedPatients,
    Constraint,
    HideLabels,
    MatchesSearch,
    OrganizationPatients,
    PatientsIn,
    ReferredPatients,
    SharedPatient,
    Unrestricted,
)
from huitong.access.decision import Reason
from huitong.access.facts_cache import FactsTicket
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.index_model import DATE_MAX
from huitong.store.search_sql import Dialect, Restrict

__all__ = [
    "MAX_RESOLVED_KEYS",
    "Explanation",
    "Resolve",
    "Restriction",
    "compile_by_type",
    "compile_constraint",
    "compile_groups",
    "explain_patients",
    "type_generic",
]

Sql = tuple[str, list[Any]]
# A compiled leaf: given the resources alias, a condition with its params.
_Cond = Callable[[str], Sql]
# Runs one read-only statement (``?`` placeholders) over the index tables; returns its rows.
Resolve = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]
# Past this many patients a resolved set is sent back as its subquery instead: an array
# parameter that large costs more to ship with every statement than the semi-join.
MAX_RESOLVED_KEYS = 20_000

# How many built conditions (alias, types) one Restriction keeps.
_BUILT_MAX = 256

_RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
_UNEVALUATED = ("purpose", "code", "data", "dataPeriod")


def compile_constraint(constraint: Constraint, dialect: Dialect) -> Restrict | None:
    """The restriction for ``constraint``, or None when it is :class:`Unrestricted`.

    ``FhirError(NOT_SUPPORTED)`` for a :class:`MatchesSearch` (scope restrictions such as
    ``?category=laboratory`` are not compiled yet: refusing is safer than ignoring them).
    """
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    if isinstance(constraint, Unrestricted):
        return None
    return _compile(constraint, dialect)


def compile_by_type(
    constraints: Mapping[str, Constraint | None], dialect: Dialect
) -> Restrict | None:
    """One restriction for rows of any type: a row of type ``T`` qualifies under
    ``constraints[T]``; a type mapped to None, or not in the mapping, never qualifies.
    None when every type of the mapping is unrestricted and nothing is left out by a None.
    The types are bound as parameters, never written into the SQL."""
    return compile_groups([((rtype,), c) for rtype, c in sorted(constraints.items())], dialect)


def compile_groups(
    groups: Sequence[tuple[Sequence[str], Constraint | None]], dialect: Dialect,
    *, resolve: Resolve | None = None, ticket: FactsTicket | None = None,
) -> Restriction | None:
    """:func:`compile_by_type` for types already grouped: ``(types, constraint)`` pairs.
    Groups whose constraints differ only in the consent's resource type are merged (the SQL
    compares a consent's class with the row's own type), so the clinical types share one
    condition.

    ``resolve`` (PostgreSQL): the facts that do not depend on the row — which patients the
    organization registered or saw, the open referrals, the consents that permit every row
    of a patient or deny them all, the consents limited to some types or labels, whether any
    consent could lift a hidden label, which patients have sensitive data at all — are read
    now, in one statement, and the condition compares ``patient_key`` with those sets. The
    statements the store then runs are small to plan and probe nothing per row for them;
    what does depend on the row (a consent limited to some types or labels, the row's own
    labels) keeps its correlated form, so the rows admitted are exactly the same. Use it
    where the restriction is built right before the statements run (a request), not inside
    a write transaction whose own uncommitted consents must count. ``ticket`` (a request's
    :class:`~huitong.access.facts_cache.FactsTicket`) lets those facts come from, and go
    to, the server's cache of them (access/facts_cache.py)."""
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    merged: dict[Constraint, list[str]] = {}
    denied = False
    for types, c in groups:
        if c is None:
            denied = True
            continue
        merged.setdefault(type_generic(c), []).extend(types)
    if not denied and list(merged) == [Unrestricted()]:
        return None
    at = _time_of(merged)
    facts = _Facts(at) if resolve is not None and dialect == "postgresql" else None
    parts: list[tuple[frozenset[str], _Cond | None]] = [
        (frozenset(types), None if isinstance(c, Unrestricted) else _compile(c, dialect, facts))
        for c, types in merged.items()
    ]
    if facts is not None and resolve is not None:
        facts.fetch(resolve, ticket)
    return Restriction(dialect, parts, facts)


class Restriction:
    """The compiled restriction: ``restriction(alias)`` is the condition for a ``resources``
    alias of any type (a :data:`~huitong.store.search_sql.Restrict`);
    :meth:`for_types` the same for an alias the statement already limits to some types;
    :meth:`explanation` which relationship admits each patient, from the facts read."""

    # Every condition compiled here reads only ``rid``, ``res_type`` and ``patient_key`` of
    # the alias it is given (the rest comes from subqueries of its own): columns each index
    # row carries with its resource's values, so the store may test the restriction on a
    # search's index rows without visiting ``resources`` (store/search_sql.py,
    # ``_row_restriction``). A leaf reading any other column must set this to False.
    index_rows = True

    def __init__(self, dialect: Dialect, parts: Sequence[tuple[frozenset[str], _Cond | None]],
                 facts: _Facts | None) -> None:  # fmt: skip
        self._dialect = dialect
        self._parts = [(sorted(types), types, cond) for types, cond in parts]
        self._facts = facts
        # (alias, types or None) -> the condition built for it. A restriction never changes
        # once built (its facts are read before it is returned), and the server reuses it
        # for the same principal's later requests (server/authorization.py): each
        # statement's condition — merging, sorting and joining the patient sets, 12 µs per
        # statement for 200 patients and growing with the set — is built once, then
        # handed out in 1 µs.
        self._built: dict[tuple[str, tuple[str, ...] | None], Sql] = {}

    def __call__(self, r: str) -> Sql:
        built = self._built.get((r, None))
        if built is None:
            built = self._keep((r, None), self._condition(r))
        # a fresh params list each time: callers may extend it
        return built[0], list(built[1])

    def _keep(self, key: tuple[str, tuple[str, ...] | None], built: Sql) -> Sql:
        # bounded: a long-lived restriction asked about many aliases and type lists keeps
        # the first few hundred (each may hold a patient set of up to 20,000 keys)
        if len(self._built) < _BUILT_MAX:
            self._built[key] = built
        return built

    def _condition(self, r: str) -> Sql:
        out: list[Sql] = []
        for types, _, cond in self._parts:
            which = _one_of(self._dialect, f"{_hint(self._dialect)}{r}.res_type", types)
            if cond is None:
                out.append(which)
            else:
                sql, params = cond(r)
                out.append((f"{which[0]} AND ({sql})", [*which[1], *params]))
        return _or(out)

    def for_types(self, r: str, types: Sequence[str]) -> Sql:
        """The condition for ``r`` when the statement already limits it to ``types``: the
        type test is left out when one part covers them all (a search of one type is not
        re-tested against the long list of every type that shares its rule)."""
        key = (r, tuple(types))
        built = self._built.get(key)
        if built is None:
            built = self._keep(key, self._for_types(r, types))
        return built[0], list(built[1])

    def _for_types(self, r: str, types: Sequence[str]) -> Sql:
        wanted = set(types)
        if not wanted:
            return self(r)
        covering = [(t, cond) for _, t, cond in self._parts if wanted <= t]
        if covering:
            cond = covering[0][1]
            return ("1 = 1", []) if cond is None else cond(r)
        if not any(wanted & t for _, t, _ in self._parts):
            return "1 = 0", []  # every type named is denied
        return self(r)

    def explanation(self) -> Explanation | None:
        """Which care relationship or consent admits each patient, according to the facts
        this restriction read; None when it read none (SQLite, inside a transaction)."""
        return None if self._facts is None else self._facts.explanation()

    def still_current(self, ticket: FactsTicket | None, now: int) -> bool:
        """May a later request (``ticket``, at ``now``) use this very restriction? Only if
        it rests on kept facts and the cache still gives that request those same facts
        (checked for it, not changed, no period boundary passed); every time a condition
        compares with lies before that boundary, so the answer at ``now`` is the same."""
        facts = self._facts
        if ticket is None or facts is None or facts.key is None or not facts.values:
            return False
        return ticket.lookup(facts.key, now) is facts.values


def _time_of(merged: Mapping[Constraint, Sequence[str]]) -> int:
    """The request time the constraints were decided at (every timed leaf carries it)."""
    stack = list(merged)
    while stack:
        c = stack.pop()
        if isinstance(c, AnyOf | AllOf):
            stack.extend(c.parts)
        elif isinstance(c, ReferredPatients | ConsentedPatients | HideLabels):
            return c.at
    return 0


def type_generic(c: Constraint) -> Constraint:
    """``c`` with the consent's resource type left to the row (the SQL compares the
    consent's class with ``res_type``), so the clinical types share one compiled condition."""
    if isinstance(c, ConsentedPatients):
        return replace(c, resource_type="")
    if isinstance(c, AnyOf | AllOf):
        return type(c)(tuple(type_generic(p) for p in c.parts))
    return c


# -- compilation ---------------------------------------------------------------


_NOW = ("now",)  # stands for the request time in a cache key
_SEP = "|"  # between a patient key and a resource id in a pair (neither contains it)


class _Facts:
    """Row-independent facts a restriction needs, gathered while compiling and then read
    in one statement (``SELECT ARRAY(...), EXISTS(...), ...``): one round trip per request
    instead of the same subqueries planned and probed inside every statement — or none,
    when a request's :class:`~huitong.access.facts_cache.FactsTicket` finds them kept.

    The statement also returns its snapshot and the next instant a consent or referral
    period starts or ends (from then on the facts are not used), and the facts record the
    change scopes they rest on (access/facts_cache.py)."""

    def __init__(self, at: int) -> None:
        self.at = at
        self._parts: list[str] = []
        self._params: list[Any] = []
        self.values: list[Any] = []
        self.scopes: set[str] = set()
        self._bounds: list[Sql] = []
        self._explain: list[tuple[str, int]] = []  # (what, index of its values)
        self._default_permit = False
        self._explanation: Explanation | None = None
        self._keys: dict[tuple[int, str], list[str]] = {}
        self.key: Any = None  # the cache key of the statement, once fetched

    def _add(self, sql: str, params: Sequence[Any]) -> int:
        self._parts.append(sql)
        self._params.extend(params)
        return len(self._parts) - 1

    def key_set(self, sql: str, params: Sequence[Any]) -> int:
        """The distinct non-null keys ``sql`` (one column) selects."""
        return self._add(f"ARRAY(SELECT DISTINCT k.key FROM ({sql}) k(key) "
                         "WHERE k.key IS NOT NULL)", params)

    def pairs(self, sql: str, params: Sequence[Any]) -> int:
        """The distinct (key, id) pairs ``sql`` (two columns) selects, as ``key|id``; read
        them with :meth:`keys_of`."""
        return self._add(f"ARRAY(SELECT DISTINCT k.key || '{_SEP}' || k.why FROM ({sql}) "
                         "k(key, why) WHERE k.key IS NOT NULL AND k.why IS NOT NULL)", params)

    def exists(self, sql: str, params: Sequence[Any]) -> int:
        return self._add(f"EXISTS ({sql})", params)

    def keys_of(self, i: int, suffix: str = "") -> list[str]:
        """The keys of pairs value ``i`` (only those whose id ends with ``suffix``); worked
        out once per request, however many statements and aliases ask."""
        found = self._keys.get((i, suffix))
        if found is None:
            found = self._keys[(i, suffix)] = sorted(
                {p.split(_SEP, 1)[0] for p in self.values[i] if p.endswith(suffix)}
            )
        return found

    def explained_by(self, what: str, i: int) -> None:
        self._explain.append((what, i))

    def default_permit(self) -> None:
        self._default_permit = True

    def bound(self, sql: str, params: Sequence[Any]) -> None:
        """One column of ``sql``: instants (µs) after ``at`` at which a fact may change."""
        if (sql, list(params)) not in self._bounds:
            self._bounds.append((sql, list(params)))

    def fetch(self, resolve: Resolve, ticket: FactsTicket | None = None) -> None:
        if not self._parts:
            return
        key = ("\n".join(self._parts), tuple(_frozen(p, self.at) for p in self._params))
        self.key = key
        if ticket is not None:
            kept = ticket.lookup(key, self.at)
            if kept is not None:
                self.values = kept
                return
        sql = "SELECT " + ", ".join(self._parts)
        params = list(self._params)
        if ticket is not None:
            bound_sql = " UNION ALL ".join(b for b, _ in self._bounds) or "SELECT NULL"
            sql += (f", CAST(pg_current_snapshot() AS TEXT), (SELECT MIN(b.t) FROM "
                    f"({bound_sql}) b(t))")
            params += [p for _, ps in self._bounds for p in ps]
        taken = time.monotonic()
        row = list(resolve(sql, params)[0])
        read = time.monotonic()
        if ticket is None:
            self.values = row
            return
        *self.values, snapshot, until = row
        ticket.store(key, self.values, snapshot=snapshot,
                     valid_until=None if until is None else int(until),
                     scopes=self.scopes, taken=taken, read=read)  # fmt: skip

    def explanation(self) -> Explanation | None:
        if not self.values:
            return None
        if self._explanation is None:
            found = Explanation(default_permit=self._default_permit)
            for what, i in self._explain:
                found.add(what, self.values[i])
            self._explanation = found
        return self._explanation


class Explanation:
    """Which relationship admits a patient, from facts: the organization's patients,
    referrals and consents (``key|id:all`` or ``key|id:some`` pairs), denies."""

    def __init__(self, *, default_permit: bool = False) -> None:
        self.default_permit = default_permit
        self.organization: set[str] = set()
        self.deny: set[str] = set()
        self.referral: dict[str, str] = {}
        self.consent: dict[str, str] = {}

    def add(self, what: str, values: Sequence[str]) -> None:
        if what in ("organization", "deny"):
            getattr(self, what).update(values)
            return
        into: dict[str, str] = getattr(self, what)
        for p in sorted(values, key=lambda v: (v.endswith(":some"), v)):
            key, _, why = p.partition(_SEP)  # a consent for every row first, then by id
            into.setdefault(key, why)

    def explain(self, patient_id: str, *, limited: bool = True) -> Reason | None:
        """In the order the policy states them: own organization, referral, consent.
        ``limited`` False: a consent limited to some types or labels, and the opt-out
        default, do not count (the caller tries share codes and break-glass first: those
        are what admitted a row such a consent does not cover)."""
        if patient_id in self.organization:
            return Reason("role", "clinician-own-organization",
                          "The patient is registered or was seen at your organization.",
                          "该患者在您的机构登记或就诊过。")  # fmt: skip
        if ref := self.referral.get(patient_id):
            return Reason("referral", "clinician-referral",
                          f"The patient was referred to you (referral {ref}).",
                          f"该患者已转诊给您（转诊 {ref}）。", ref=ref)  # fmt: skip
        if patient_id in self.deny:
            return None
        found = self.consent.get(patient_id, "")
        ref, _, extent = found.partition(":")
        if ref and (limited or extent != "some"):
            return Reason("consent", "consent-permit", f"Consent {ref} permits this access.",
                          f"同意书 {ref} 允许此访问。", ref=ref)  # fmt: skip
        if self.default_permit and limited:
            return Reason(
                "consent", "opt-out-default",
                "No consent applies; the region shares by default (opt-out) and the patient "
                "has not opted out.",
                "无适用的同意书；本区域默认共享（选择退出制），患者未选择退出。",
            )  # fmt: skip
        return None


def _frozen(value: Any, at: int) -> Any:
    """A hashable stand-in for a statement parameter; the request time becomes a marker,
    so the same facts are found again at a later time (their ``valid_until`` says until
    when the answer holds). Every integer parameter of the facts statement is that time."""
    if isinstance(value, list):
        return tuple(_frozen(v, at) for v in value)
    if isinstance(value, int) and not isinstance(value, bool) and value == at:
        return _NOW
    return value


def _key_list(keys: Sequence[str]) -> Sql:
    """``keys`` as a PostgreSQL text array: one text parameter split by the server (ids
    never contain a comma). Sending a list costs the driver a quoting check per element,
    for every statement; the split of a constant is folded when the statement is planned."""
    return "string_to_array(?, ',')", [",".join(keys)]


def _key_in(r: str, keys: Sequence[str]) -> Sql:
    """``r``'s patient is one of ``keys`` (a NULL patient_key is not).

    Tested as a hashed sub-plan, ``(key IN (SELECT unnest(…))) IS TRUE``, not as
    ``key = ANY(array)``: with the array a constant (searches are planned per statement),
    the planner estimates ``= ANY`` element by element against the column's most common
    values, and once ``ANALYZE`` has gathered them that cost 2.3-2.7 ms of planning per
    statement for 201 keys (×1.4-1.5 a clinician's cheap searches; without statistics it
    had been 0.3 ms). ``IS TRUE`` keeps it a filter the planner does not estimate per key
    (nor turn into a join); the rows it admits are the same."""
    if not keys:
        return "1 = 0", []
    array, params = _key_list(keys)
    return f"({r}.patient_key IN (SELECT unnest({array}))) IS TRUE", params


def _key_not_in(r: str, keys: Sequence[str]) -> Sql:
    """``r``'s patient is none of ``keys`` (true for a NULL patient_key, like NOT EXISTS:
    ``NULL IN (…)`` is NULL, which IS NOT TRUE). Same form as :func:`_key_in`."""
    if not keys:
        return "1 = 1", []
    array, params = _key_list(keys)
    return f"({r}.patient_key IN (SELECT unnest({array}))) IS NOT TRUE", params


class _Keys:
    """A condition that is "the row's patient is one of a set of keys read ahead" whenever
    :meth:`keys` gives that set (None: it does not reduce to one, the condition is
    ``fallback``). An :class:`AnyOf` of several such sets is tested as one array (one
    hashed comparison per row, less to plan) instead of an OR of each."""

    def __init__(self, keys: Callable[[], list[str] | None], fallback: _Cond) -> None:
        self.keys = keys
        self._fallback = fallback

    def __call__(self, r: str) -> Sql:
        keys = self.keys()
        return self._fallback(r) if keys is None else _key_in(r, keys)


def _resolved_set(facts: _Facts, i: int, fallback: _Cond, *, pairs: bool = False) -> _Cond:
    """``r.patient_key = ANY(<the keys of facts value i>)``; the subquery form
    (``fallback``) when the set is too large to ship as a parameter."""

    def keys() -> list[str] | None:
        found: list[str] = facts.keys_of(i) if pairs else facts.values[i]
        return None if len(found) > MAX_RESOLVED_KEYS else found

    return _Keys(keys, fallback)


def _any_of(parts: Sequence[_Cond]) -> _Cond:
    """The union of ``parts``; the key sets among them (:class:`_Keys`) merged into one."""
    sets = [p for p in parts if isinstance(p, _Keys)]
    if len(sets) < 2:
        return lambda r: _or([p(r) for p in parts])

    def cond(r: str) -> Sql:
        merged: set[str] = set()
        out: list[Sql] = []
        for p in parts:
            keys = p.keys() if isinstance(p, _Keys) else None
            if keys is None:
                out.append(p(r))
            else:
                merged.update(keys)
        if len(merged) > MAX_RESOLVED_KEYS:
            return _or([p(r) for p in parts])
        if merged:
            out.insert(0, _key_in(r, sorted(merged)))
        return _or(out)

    return cond


def _keyed(c: Constraint) -> bool:
    """Whether every row ``c`` admits has a patient (``patient_key`` not NULL): every leaf
    but :class:`Unrestricted` (and a search restriction) compares the key with patients."""
    if isinstance(c, AnyOf):
        return all(_keyed(p) for p in c.parts)
    if isinstance(c, AllOf):
        return any(_keyed(p) for p in c.parts)
    return not isinstance(c, Unrestricted | MatchesSearch | HideLabels)


def _actor_scopes(organization_id: str | None, practitioner_id: str | None) -> set[str]:
    """The change scopes (access/facts_cache.py) of facts about this organization and
    practitioner."""
    out = set()
    if organization_id:
        out.add(f"Organization/{organization_id}")
    if practitioner_id:
        out.add(f"Practitioner/{practitioner_id}")
    return out


def _compile(c: Constraint, d: Dialect, facts: _Facts | None = None, *,
             keyed: bool = False) -> _Cond:  # fmt: skip
    """``keyed``: ``c`` is ANDed with a constraint that admits only rows with a patient
    (:func:`_keyed`), so a row without one need not be provided for."""
    if facts is not None:
        resolved = _compile_resolved(c, d, facts, keyed=keyed)
        if resolved is not None:
            return resolved
    if isinstance(c, Unrestricted):
        return lambda r: ("1 = 1", [])
    if isinstance(c, PatientsIn):
        ids = sorted(c.patient_ids)
        return lambda r: _one_of(d, f"{_hint(d)}{r}.patient_key", ids)
    if isinstance(c, BreakGlassPatient | SharedPatient):
        # the policy keeps only windows open at the time of the request
        pid = c.patient_id
        return lambda r: (f"{_hint(d)}{r}.patient_key = ?", [pid])
    if isinstance(c, OrganizationPatients):
        return _organization_patients(c, d)
    if isinstance(c, ReferredPatients):
        return _referred_patients(c, d)
    if isinstance(c, ConsentedPatients):
        return _consented_patients(c, d)
    if isinstance(c, HideLabels):
        return _hide_labels(c, d)
    if isinstance(c, MatchesSearch):
        text = "&".join(f"{k}={v}" for k, v in c.params)
        raise FhirError(
            Category.NOT_SUPPORTED,
            f"Scopes restricted by search parameters ({text}) are not supported yet / "
            f"暂不支持带搜索参数限制的权限范围（{text}）",
        )
    if isinstance(c, AnyOf):
        return _any_of([_compile(p, d, facts, keyed=keyed) for p in c.parts])
    if isinstance(c, AllOf):
        parts = [
            _compile(p, d, facts, keyed=keyed or any(_keyed(o) for o in c.parts if o is not p))
            for p in c.parts
        ]
        return lambda r: _and([p(r) for p in parts])
    raise TypeError(f"unknown constraint {c!r}")


def _compile_resolved(c: Constraint, d: Dialect, facts: _Facts, *,
                      keyed: bool = False) -> _Cond | None:  # fmt: skip
    """The leaves whose patient sets are read once (see :func:`compile_groups`); None for
    the others, which compile as usual."""
    if isinstance(c, OrganizationPatients):
        sql, params = _organization_keys(c.organization_id)
        i = facts.key_set(sql, params)
        facts.scopes.update(_actor_scopes(c.organization_id, None))
        facts.explained_by("organization", i)
        return _resolved_set(facts, i, _organization_patients(c, d))
    if isinstance(c, ReferredPatients):
        sql, params = _referral_keys(c, with_id=True)
        i = facts.pairs(sql, params)
        facts.scopes.update(_actor_scopes(c.organization_id, c.practitioner_id))
        facts.explained_by("referral", i)
        actor_sql, actor_params = _actor_match("rb", c.organization_id, c.practitioner_id)
        for column, test in (("lo", "bd.lo > ?"), ("hi + 1", "bd.hi >= ? AND bd.hi < ?")):
            facts.bound(
                f"SELECT MIN(bd.{column}) FROM idx_reference rb JOIN idx_date bd "
                "ON bd.rid = rb.rid AND bd.param = 'occurrence' "
                f"WHERE rb.res_type = 'ServiceRequest' AND rb.param = 'performer' "
                f"AND ({actor_sql}) AND {test}",
                [*actor_params, c.at, *([DATE_MAX] if column != "lo" else [])],
            )
        return _resolved_set(facts, i, _referred_patients(c, d), pairs=True)
    if isinstance(c, ConsentedPatients):
        return _consented_resolved(c, d, facts)
    if isinstance(c, HideLabels):
        return _hide_labels_resolved(c, d, facts, keyed=keyed)
    return None


def _consent_bounds(facts: _Facts, c: ConsentedPatients | HideLabels) -> None:
    """Consents rest on the change scopes of the actor and ``*`` (consents naming no one),
    and change with time when a period starts or ends (any Consent's: a deny naming nobody
    counts for everyone)."""
    facts.scopes.update({"*", *_actor_scopes(c.organization_id, c.practitioner_id)})
    at = c.at
    facts.bound("SELECT MIN(cb.lo) FROM idx_date cb WHERE cb.res_type = 'Consent' "
                "AND cb.param = 'period' AND cb.lo > ?", [at])  # fmt: skip
    facts.bound("SELECT MIN(cb.hi + 1) FROM idx_date cb WHERE cb.res_type = 'Consent' "
                "AND cb.param = 'period' AND cb.hi >= ? AND cb.hi < ?", [at, DATE_MAX])  # fmt: skip


def _organization_keys(org: str) -> Sql:
    """The patients registered at ``org`` or seen there (one column of patient keys)."""
    return (
        "SELECT op.patient_key FROM idx_reference op "
        "WHERE op.res_type = 'Patient' AND op.param = 'organization' "
        "AND op.target_id = ? AND op.target_type = 'Organization' "
        "UNION SELECT oe.patient_key FROM idx_reference oe "
        "WHERE oe.res_type = 'Encounter' AND oe.param = 'service-provider' "
        "AND oe.target_id = ? AND oe.target_type = 'Organization'",
        [org, org],
    )


def _organization_patients(c: OrganizationPatients, d: Dialect) -> _Cond:
    keys_sql, keys_params = _organization_keys(c.organization_id)

    def cond(r: str) -> Sql:
        return f"{_hint(d)}{r}.patient_key IN ({keys_sql})", list(keys_params)

    return cond


def _actor_match(x: str, organization_id: str | None, practitioner_id: str | None) -> Sql:
    """Reference rows ``x`` pointing at the organization or the practitioner."""
    parts: list[Sql] = []
    if organization_id:
        parts.append((f"{x}.target_id = ? AND {x}.target_type = 'Organization'",
                      [organization_id]))  # fmt: skip
    if practitioner_id:
        parts.append((f"{x}.target_id = ? AND {x}.target_type = 'Practitioner'",
                      [practitioner_id]))  # fmt: skip
    return _or(parts)


def _referral_keys(c: ReferredPatients, *, with_id: bool = False) -> Sql:
    """The patients with an active referral to the practitioner or organization, in force
    at ``c.at`` (one column of patient keys; ``with_id``: and the ServiceRequest's id)."""
    actor_sql, actor_params = _actor_match("rs", c.organization_id, c.practitioner_id)
    why = ", (SELECT ri.res_id FROM resources ri WHERE ri.rid = rs.rid) AS why" if with_id else ""
    return (
        f"SELECT rs.patient_key{why} FROM idx_reference rs "
        "WHERE rs.res_type = 'ServiceRequest' AND rs.param = 'performer' "
        f"AND ({actor_sql}) "
        "AND EXISTS (SELECT 1 FROM idx_token rt WHERE rt.rid = rs.rid "
        "AND rt.param = 'status' AND rt.code = 'active') "
        "AND NOT EXISTS (SELECT 1 FROM idx_date rd WHERE rd.rid = rs.rid "
        "AND rd.param = 'occurrence' AND NOT (rd.lo <= ? AND ? <= rd.hi))",
        [*actor_params, c.at, c.at],
    )


def _referred_patients(c: ReferredPatients, d: Dialect) -> _Cond:
    keys_sql, keys_params = _referral_keys(c)

    def cond(r: str) -> Sql:
        return f"{_hint(d)}{r}.patient_key IN ({keys_sql})", list(keys_params)

    return cond


def _json(d: Dialect, col: str, *path: str) -> str:
    """The JSON value at ``path`` of ``col`` (NULL when absent), as SQL."""
    if d == "sqlite":
        return f"json_extract({col}, '$.{'.'.join(path)}')"
    return f"({col} #> '{{{','.join(path)}}}')"


def _json_text(d: Dialect, col: str, *path: str) -> str:
    if d == "sqlite":
        return _json(d, col, *path)
    return f"({col} #>> '{{{','.join(path)}}}')"


def _json_items(d: Dialect, col: str, *path: str) -> tuple[str, str]:
    """(FROM-clause source, value expression) for the elements of the array at ``path``."""
    if d == "sqlite":
        return f"json_each({col}, '$.{'.'.join(path)}')", "value"
    return f"jsonb_array_elements({_json(d, col, *path)})", "value"


def _item_text(d: Dialect, alias: str, key: str) -> str:
    if d == "sqlite":
        return f"json_extract({alias}.value, '$.{key}')"
    return f"({alias}.value ->> '{key}')"


def _consent_rule(d: Dialect, cr: str, r: str | None, kind: str, *,
                  limited: bool = False) -> Sql:  # fmt: skip
    """The Consent row ``cr`` (a resources alias) is an active patient-privacy consent whose
    root provision is of ``kind``, in force now, and — for a permit — applies to row ``r``
    (class, action, securityLabel) with nothing Huitong cannot evaluate. ``r`` None: a permit
    that names no class and no security label, so it applies to every row of the patient
    (``limited``: whatever class or label it names)."""
    conds = [
        f"EXISTS (SELECT 1 FROM idx_token cs WHERE cs.rid = {cr}.rid AND cs.param = 'status' "
        "AND cs.code = 'active')",
        f"EXISTS (SELECT 1 FROM idx_token cp WHERE cp.rid = {cr}.rid AND cp.param = 'scope' "
        "AND cp.code = 'patient-privacy')",
        f"{_json_text(d, f'{cr}.content', 'provision', 'type')} = ?",
    ]
    params: list[Any] = [kind]
    if kind == "permit":
        conds.append(f"{_json(d, f'{cr}.content', 'provision', 'provision')} IS NULL")
        conds += [f"{_json(d, f'{cr}.content', 'provision', k)} IS NULL" for k in _UNEVALUATED]
        if r is None and not limited:
            conds += [f"{_json(d, f'{cr}.content', 'provision', k)} IS NULL"
                      for k in ("class", "securityLabel")]
        src, _ = _json_items(d, f"{cr}.content", "provision", "class")
        if r is not None:
            conds.append(
                f"({_json(d, f'{cr}.content', 'provision', 'class')} IS NULL OR EXISTS "
                f"(SELECT 1 FROM {src} cc WHERE {_item_text(d, 'cc', 'code')} = {r}.res_type "
                f"AND COALESCE({_item_text(d, 'cc', 'system')}, ?) = ?))"
            )
            params += [_RESOURCE_TYPES, _RESOURCE_TYPES]
        src, _ = _json_items(d, f"{cr}.content", "provision", "action")
        if d == "sqlite":
            codings = "json_each(cx.value, '$.coding')"
        else:
            codings = "jsonb_array_elements(cx.value -> 'coding')"
        conds.append(
            f"({_json(d, f'{cr}.content', 'provision', 'action')} IS NULL OR EXISTS "
            f"(SELECT 1 FROM {src} cx CROSS JOIN {codings} ck "
            f"WHERE {_item_text(d, 'ck', 'code')} IN ('access', 'use')))"
        )
        src, _ = _json_items(d, f"{cr}.content", "provision", "securityLabel")
        if r is not None:
            conds.append(
                f"({_json(d, f'{cr}.content', 'provision', 'securityLabel')} IS NULL OR EXISTS "
                f"(SELECT 1 FROM {src} cl CROSS JOIN idx_token ct WHERE ct.rid = {r}.rid "
                f"AND ct.param = '_security' AND ct.code = {_item_text(d, 'cl', 'code')}))"
            )
    return " AND ".join(conds), params


def _in_period(cr: str, at: int) -> Sql:
    return (
        f"NOT EXISTS (SELECT 1 FROM idx_date cd WHERE cd.rid = {cr}.rid AND cd.param = 'period' "
        "AND NOT (cd.lo <= ? AND ? <= cd.hi))",
        [at, at],
    )


def _no_actor(cr: str) -> str:
    """The Consent row ``cr`` names no actor: its provision applies to any treating
    clinician (https://hl7.org/fhir/R4/consent.html: a provision without actors applies to
    everyone the rule otherwise covers)."""
    return (f"NOT EXISTS (SELECT 1 FROM idx_reference {cr}0 WHERE {cr}0.rid = {cr}.rid "
            f"AND {cr}0.param = 'actor')")


def _consented_patients(c: ConsentedPatients, d: Dialect) -> _Cond:
    actor_sql, actor_params = _actor_match("ca", c.organization_id, c.practitioner_id)
    deny_actor_sql, deny_actor_params = _actor_match("da", c.organization_id, c.practitioner_id)

    def cond(r: str) -> Sql:
        rule_sql, rule_params = _consent_rule(d, "cr", r, "permit")
        period_sql, period_params = _in_period("cr", c.at)
        permit = (
            "(EXISTS (SELECT 1 FROM idx_reference ca CROSS JOIN resources cr "
            f"WHERE ca.patient_key = {r}.patient_key AND ca.res_type = 'Consent' "
            f"AND ca.param = 'actor' AND ({actor_sql}) AND cr.rid = ca.rid "
            f"AND {period_sql} AND {rule_sql}) "
            # a permit naming no actor: any treating clinician
            "OR EXISTS (SELECT 1 FROM resources cr WHERE cr.res_type = 'Consent' "
            f"AND cr.patient_key = {r}.patient_key AND {_no_actor('cr')} "
            f"AND {period_sql} AND {rule_sql}))",
            [*actor_params, *period_params, *rule_params, *period_params, *rule_params],
        )
        # deny overrides permit; a deny with no actor applies to everyone
        deny_sql, deny_params = _consent_rule(d, "dr", r, "deny")
        dperiod_sql, dperiod_params = _in_period("dr", c.at)
        deny = (
            "NOT EXISTS (SELECT 1 FROM resources dr WHERE dr.res_type = 'Consent' "
            f"AND dr.patient_key = {r}.patient_key AND {dperiod_sql} AND {deny_sql} "
            "AND (NOT EXISTS (SELECT 1 FROM idx_reference da0 WHERE da0.rid = dr.rid "
            "AND da0.param = 'actor') OR EXISTS (SELECT 1 FROM idx_reference da "
            f"WHERE da.rid = dr.rid AND da.param = 'actor' AND ({deny_actor_sql}))))",
            [*dperiod_params, *deny_params, *deny_actor_params],
        )
        if c.default_permit:
            # opt-out region: every patient (with a record) unless a consent denies
            return _and([(f"{r}.patient_key IS NOT NULL", []), deny])
        return _and([permit, deny])

    return cond


def _deny_keys(c: ConsentedPatients | ReferredPatients, d: Dialect) -> Sql:
    """The patients whose active deny consent, in force at ``c.at``, names this
    organization or practitioner, or no one (one column of patient keys)."""
    deny_actor_sql, deny_actor_params = _actor_match("da", c.organization_id, c.practitioner_id)
    deny_sql, deny_params = _consent_rule(d, "dr", None, "deny")
    dperiod_sql, dperiod_params = _in_period("dr", c.at)
    return (
        # driven by the active Consents' index rows: with no row to correlate with, the
        # planner would otherwise start from every 'status = active' row of every type
        "SELECT dr.patient_key FROM resources dr WHERE dr.res_type = 'Consent' "
        "AND dr.rid IN (SELECT dt.rid FROM idx_token dt WHERE dt.res_type = 'Consent' "
        "AND dt.param = 'status' AND dt.code = 'active') "
        f"AND {dperiod_sql} AND {deny_sql} "
        "AND (NOT EXISTS (SELECT 1 FROM idx_reference da0 WHERE da0.rid = dr.rid "
        "AND da0.param = 'actor') OR EXISTS (SELECT 1 FROM idx_reference da "
        f"WHERE da.rid = dr.rid AND da.param = 'actor' AND ({deny_actor_sql})))",
        [*dperiod_params, *deny_params, *deny_actor_params],
    )


def _permit_pairs(c: ConsentedPatients | ReferredPatients, d: Dialect) -> Sql:
    """(patient key, consent id + ``:all`` or ``:some``) of the active permits in force at
    ``c.at`` naming this organization or practitioner, or no one: ``:all`` names no class
    and no label (every row of the patient), ``:some`` is limited to some types or labels
    (decided per row by the correlated test)."""
    actor_sql, actor_params = _actor_match("ca", c.organization_id, c.practitioner_id)
    period_sql, period_params = _in_period("cr", c.at)
    rule_sql, rule_params = _consent_rule(d, "cr", None, "permit", limited=True)
    suffix = (f"CASE WHEN {_json(d, 'cr.content', 'provision', 'class')} IS NULL AND "
              f"{_json(d, 'cr.content', 'provision', 'securityLabel')} IS NULL "
              "THEN ':all' ELSE ':some' END")
    return (
        f"SELECT ca.patient_key, cr.res_id || {suffix} AS why FROM idx_reference ca "
        "CROSS JOIN resources cr WHERE ca.res_type = 'Consent' "
        f"AND ca.param = 'actor' AND ({actor_sql}) AND cr.rid = ca.rid "
        f"AND {period_sql} AND {rule_sql} "
        # and permits naming no actor (any treating clinician)
        f"UNION SELECT cr.patient_key, cr.res_id || {suffix} AS why FROM resources cr "
        "WHERE cr.res_type = 'Consent' "
        "AND cr.rid IN (SELECT ct.rid FROM idx_token ct WHERE ct.res_type = 'Consent' "
        "AND ct.param = 'status' AND ct.code = 'active') "
        f"AND {_no_actor('cr')} AND {period_sql} AND {rule_sql}",
        [*actor_params, *period_params, *rule_params, *period_params, *rule_params],
    )


def _consented_resolved(c: ConsentedPatients, d: Dialect, facts: _Facts) -> _Cond:
    """:func:`_consented_patients` with the row-independent parts read once: the patients
    whose consent permits every row (no class, no security label) and the patients whose
    consent denies, each permit with the consent's id (what the audit entry names). A
    permit limited to some types or labels keeps its correlated test, and only while one
    naming this organization or practitioner (or no one) is active and in force."""
    _consent_bounds(facts, c)
    deny_i = facts.key_set(*_deny_keys(c, d))
    facts.explained_by("deny", deny_i)
    correlated = _consented_patients(c, d)
    if c.default_permit:
        facts.default_permit()

        def opt_out(r: str) -> Sql:
            denies = facts.values[deny_i]
            if len(denies) > MAX_RESOLVED_KEYS:
                return correlated(r)
            return _and([(f"{r}.patient_key IS NOT NULL", []), _key_not_in(r, denies)])

        return opt_out
    permit_i = facts.pairs(*_permit_pairs(c, d))
    facts.explained_by("consent", permit_i)

    def cond(r: str) -> Sql:
        permits, denies = facts.keys_of(permit_i, ":all"), facts.values[deny_i]
        if len(permits) > MAX_RESOLVED_KEYS or len(denies) > MAX_RESOLVED_KEYS:
            return correlated(r)
        permit = _key_in(r, permits)
        if facts.keys_of(permit_i, ":some"):
            permit = _or([permit, correlated(r)])  # deny included there too: harmless
        return _and([permit, _key_not_in(r, denies)])

    def keys() -> list[str] | None:
        # the usual case — no deny, no consent limited to some types or labels — is the
        # set of patients whose consent permits every row
        if facts.values[deny_i] or facts.keys_of(permit_i, ":some"):
            return None
        permits = facts.keys_of(permit_i, ":all")
        return None if len(permits) > MAX_RESOLVED_KEYS else permits

    return _Keys(keys, cond)


def explain_patients(
    resolve: Resolve, dialect: Dialect, patient_ids: Sequence[str], *,
    organization_id: str | None, practitioner_id: str | None, at: int,
    default_permit: bool = False,
) -> Explanation:
    """Which relationship admits each of ``patient_ids`` for a clinician of this
    organization / practitioner at ``at`` — own organization, a referral (its id), a
    consent (its id), the opt-out default — in one statement over the index (both engines):
    what an audit entry names when no facts were read ahead (SQLite, a transaction's
    reads)."""
    ids = sorted(set(patient_ids))
    if not ids or not (organization_id or practitioner_id):
        return Explanation()
    marks = ", ".join("?" * len(ids))
    parts: list[Sql] = []
    if organization_id:
        org_sql, org_params = _organization_keys(organization_id)
        parts.append((f"SELECT 'organization', k.patient_key, '' FROM ({org_sql}) k "
                      f"WHERE k.patient_key IN ({marks})", [*org_params, *ids]))  # fmt: skip
    timed = ReferredPatients(practitioner_id, organization_id, at)
    ref_sql, ref_params = _referral_keys(timed, with_id=True)
    parts.append((f"SELECT 'referral', k.patient_key, k.why FROM ({ref_sql}) k "
                  f"WHERE k.patient_key IN ({marks})", [*ref_params, *ids]))  # fmt: skip
    consent = ConsentedPatients(organization_id, practitioner_id, "", at, default_permit)
    permit_sql, permit_params = _permit_pairs(consent, dialect)
    parts.append((f"SELECT 'consent', k.patient_key, k.why FROM ({permit_sql}) k "
                  f"WHERE k.patient_key IN ({marks})", [*permit_params, *ids]))  # fmt: skip
    deny_sql, deny_params = _deny_keys(consent, dialect)
    parts.append((f"SELECT 'deny', k.patient_key, '' FROM ({deny_sql}) k "
                  f"WHERE k.patient_key IN ({marks})", [*deny_params, *ids]))  # fmt: skip
    rows = resolve(" UNION ALL ".join(p for p, _ in parts), [v for _, ps in parts for v in ps])
    found = Explanation(default_permit=default_permit)
    for what, key, why in rows:
        found.add(what, [f"{key}{_SEP}{why}" if why else key])
    return found


def _hide_labels_resolved(c: HideLabels, d: Dialect, facts: _Facts, *,
                          keyed: bool = False) -> _Cond:  # fmt: skip
    """:func:`_hide_labels`, reduced to the row's own labels when no consent naming this
    organization or practitioner lists any of them (the usual case): then nothing can lift
    a hidden label, and the test needs no consent lookup per row. The patients with any row
    carrying one of the labels are read too: a row of another patient cannot carry one, so
    the per-row probe runs only for the few patients that have sensitive data."""
    labels = sorted(c.labels)
    full = _hide_labels(c, d)
    if not labels or not (c.organization_id or c.practitioner_id):
        return full
    _consent_bounds(facts, c)
    facts.scopes.update(f"label/{x}" for x in labels)
    actor_sql, actor_params = _actor_match("ga", c.organization_id, c.practitioner_id)
    which_sql, which_params = _one_of(d, "gl.code", labels)
    grantable_i = facts.exists(
        "SELECT 1 FROM idx_reference ga CROSS JOIN idx_token gl WHERE ga.res_type = 'Consent' "
        f"AND ga.param = 'actor' AND ({actor_sql}) AND gl.rid = ga.rid "
        f"AND gl.param = 'security-label' AND {which_sql} "
        # or a consent naming no actor (any treating clinician) that lists one of them
        "UNION ALL SELECT 1 FROM idx_token gl WHERE gl.res_type = 'Consent' "
        f"AND gl.param = 'security-label' AND {which_sql} AND NOT EXISTS (SELECT 1 "
        "FROM idx_reference ga0 WHERE ga0.rid = gl.rid AND ga0.param = 'actor')",
        [*actor_params, *which_params, *which_params],
    )
    labelled_sql, labelled_params = _one_of(d, "hl.code", labels)
    labelled_i = facts.key_set(
        # the partial index idx_token_security (migration 0013) holds just these rows
        f"SELECT hl.patient_key FROM idx_token hl WHERE hl.param = '_security' "
        f"AND {labelled_sql}",
        labelled_params,
    )

    def cond(r: str) -> Sql:
        if facts.values[grantable_i]:
            return full(r)
        row_sql, row_params = _one_of(d, "ht.code", labels)
        # "IS TRUE" keeps the label list out of the index condition: one descent to the
        # row's few _security entries instead of one per label (same rows either way)
        probe = (
            f"NOT EXISTS (SELECT 1 FROM idx_token ht WHERE ht.rid = {r}.rid "
            f"AND ht.param = '_security' AND ({row_sql}) IS TRUE)"
        )
        labelled = facts.values[labelled_i]
        if len(labelled) > MAX_RESOLVED_KEYS:
            return probe, row_params
        # a row of a patient with no labelled row at all passes without the probe (OR is
        # evaluated left to right); rows without a patient are probed as before — unless
        # ``keyed``: then no such row gets through anyway, and with no labelled patient at
        # all there is nothing left to test (nor to plan, in every statement)
        if not labelled:
            if keyed:
                return "1 = 1", []
            return f"({r}.patient_key IS NOT NULL OR {probe})", row_params
        array, array_params = _key_list(labelled)
        known = "" if keyed else f"{r}.patient_key IS NOT NULL AND "
        return (
            f"(({known}{r}.patient_key <> ALL({array})) OR {probe})",
            [*array_params, *row_params],
        )

    return cond


def _hide_labels(c: HideLabels, d: Dialect) -> _Cond:
    labels = sorted(c.labels)
    actor_sql, actor_params = _actor_match("ga", c.organization_id, c.practitioner_id)

    def cond(r: str) -> Sql:
        if not labels:
            return "1 = 1", []
        which_sql, which_params = _one_of(d, "ht.code", labels)
        rule_sql, rule_params = _consent_rule(d, "gr", r, "permit")
        period_sql, period_params = _in_period("gr", c.at)
        # a label stays hidden unless an applicable permit lists it explicitly
        label = ("EXISTS (SELECT 1 FROM idx_token gl WHERE gl.rid = gr.rid "
                 "AND gl.param = 'security-label' AND gl.code = ht.code)")
        granted = (
            "(EXISTS (SELECT 1 FROM idx_reference ga CROSS JOIN resources gr "
            f"WHERE ga.patient_key = {r}.patient_key AND ga.res_type = 'Consent' "
            f"AND ga.param = 'actor' AND ({actor_sql}) AND gr.rid = ga.rid "
            f"AND {label} AND {period_sql} AND {rule_sql}) "
            # a permit naming no actor grants the label to any treating clinician
            "OR EXISTS (SELECT 1 FROM resources gr WHERE gr.res_type = 'Consent' "
            f"AND gr.patient_key = {r}.patient_key AND {_no_actor('gr')} "
            f"AND {label} AND {period_sql} AND {rule_sql}))",
            [*actor_params, *period_params, *rule_params, *period_params, *rule_params],
        )
        if not (c.organization_id or c.practitioner_id):
            granted = ("1 = 0", [])
        return (
            f"NOT EXISTS (SELECT 1 FROM idx_token ht WHERE ht.rid = {r}.rid "
            f"AND ht.param = '_security' AND {which_sql} AND NOT {granted[0]})",
            [*which_params, *granted[1]],
        )

    return cond


# -- SQL helpers -----------------------------------------------------------------


def _hint(d: Dialect) -> str:
    """SQLite: unary ``+`` keeps a column out of index selection, so the search clauses
    (not the restriction) drive the query, as the store's builders intend; PostgreSQL's
    planner chooses from statistics."""
    return "+" if d == "sqlite" else ""


def _one_of(d: Dialect, expr: str, values: Sequence[Any]) -> Sql:
    if not values:
        return "1 = 0", []
    if len(values) == 1:
        return f"{expr} = ?", [values[0]]
    if d == "postgresql":
        return f"{expr} = ANY(?)", [list(values)]
    return f"{expr} IN ({', '.join('?' * len(values))})", list(values)


def _and(parts: Sequence[Sql]) -> Sql:
    # a part that always holds is left out (every statement plans what is written)
    parts = [p for p in parts if p[0] != "1 = 1"]
    if any(p[0] == "1 = 0" for p in parts):
        return "1 = 0", []
    if not parts:
        return "1 = 1", []
    if len(parts) == 1:
        return parts[0]
    return " AND ".join(f"({s})" for s, _ in parts), [v for _, p in parts for v in p]


def _or(parts: Sequence[Sql]) -> Sql:
    parts = [p for p in parts if p[0] != "1 = 0"]  # a part that never holds, likewise
    if any(p[0] == "1 = 1" for p in parts):
        return "1 = 1", []
    if not parts:
        return "1 = 0", []
    if len(parts) == 1:
        return parts[0]
    return "(" + " OR ".join(f"({s})" for s, _ in parts) + ")", [v for _, p in parts for v in p]
