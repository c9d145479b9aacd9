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
from huitong.fhir.errors import Category, FhirError
from huitong.store.search_sql import Dialect, Restrict

__all__ = [
    "MAX_RESOLVED_KEYS",
    "Resolve",
    "compile_by_type",
    "compile_constraint",
    "compile_groups",
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
    *, resolve: Resolve | None = None,
) -> Restrict | None:
    """:func:`compile_by_type` for types already grouped: ``(types, constraint)`` pairs.
    Groups whose constraints differ only in the consent's resource type are merged (the SQL
    compares a consent's class with the row's own type), so the clinical types share one
    condition.

    ``resolve`` (PostgreSQL): the facts that do not depend on the row — which patients the
    organization registered or saw, the open referrals, the consents that permit every row
    of a patient or deny them all, whether any consent could lift a hidden label — are read
    now, in one statement, and the condition compares ``patient_key`` with those sets. The
    statements the store then runs are small to plan and probe nothing per row for them;
    what does depend on the row (a consent limited to some types or labels, the row's own
    labels) keeps its correlated form, so the rows admitted are exactly the same. Use it
    where the restriction is built right before the statements run (a request), not inside
    a write transaction whose own uncommitted consents must count."""
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
    facts = _Facts() if resolve is not None and dialect == "postgresql" else None
    parts: list[tuple[list[str], _Cond | None]] = [
        (sorted(types), None if isinstance(c, Unrestricted) else _compile(c, dialect, facts))
        for c, types in merged.items()
    ]
    if facts is not None and resolve is not None:
        facts.fetch(resolve)

    def restrict(r: str) -> Sql:
        out: list[Sql] = []
        for types, cond in parts:
            which = _one_of(dialect, f"{_hint(dialect)}{r}.res_type", types)
            if cond is None:
                out.append(which)
            else:
                sql, params = cond(r)
                out.append((f"{which[0]} AND ({sql})", [*which[1], *params]))
        return _or(out)

    return restrict


def type_generic(c: Constraint) -> Constraint:
    """``c`` with the consent's resource type left to the row (the SQL compares the
    consent's class with ``res_type``), so the clinical types share one compiled condition."""
    if isinstance(c, ConsentedPatients):
        return replace(c, resource_type="")
    if isinstance(c, AnyOf | AllOf):
        return type(c)(tuple(type_generic(p) for p in c.parts))
    return c


# -- compilation ---------------------------------------------------------------


class _Facts:
    """Row-independent facts a restriction needs, gathered while compiling and then read
    in one statement (``SELECT ARRAY(...), EXISTS(...), ...``): one round trip per request
    instead of the same subqueries planned and probed inside every statement."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._params: list[Any] = []
        self.values: list[Any] = []

    def _add(self, sql: str, params: Sequence[Any]) -> int:
        self._parts.append(sql)
        self._params.extend(params)
        return len(self._parts) - 1

    def key_set(self, sql: str, params: Sequence[Any]) -> int:
        """The distinct non-null keys ``sql`` (one column) selects."""
        return self._add(f"ARRAY(SELECT DISTINCT k.key FROM ({sql}) k(key) "
                         "WHERE k.key IS NOT NULL)", params)

    def exists(self, sql: str, params: Sequence[Any]) -> int:
        return self._add(f"EXISTS ({sql})", params)

    def fetch(self, resolve: Resolve) -> None:
        if self._parts:
            self.values = list(resolve("SELECT " + ", ".join(self._parts), self._params)[0])


def _key_in(r: str, keys: Sequence[str]) -> Sql:
    """``r``'s patient is one of ``keys`` (a NULL patient_key is not)."""
    if not keys:
        return "1 = 0", []
    return f"{r}.patient_key = ANY(?)", [list(keys)]


def _key_not_in(r: str, keys: Sequence[str]) -> Sql:
    """``r``'s patient is none of ``keys`` (true for a NULL patient_key, like NOT EXISTS)."""
    if not keys:
        return "1 = 1", []
    return f"({r}.patient_key IS NULL OR {r}.patient_key <> ALL(?))", [list(keys)]


def _resolved_set(facts: _Facts, sql: str, params: Sequence[Any],
                  fallback: _Cond) -> _Cond:
    """``r.patient_key = ANY(<the keys sql selects, read once>)``; the subquery form
    (``fallback``) when the set is too large to ship as a parameter."""
    i = facts.key_set(sql, params)

    def cond(r: str) -> Sql:
        keys = facts.values[i]
        return fallback(r) if len(keys) > MAX_RESOLVED_KEYS else _key_in(r, keys)

    return cond


def _compile(c: Constraint, d: Dialect, facts: _Facts | None = None) -> _Cond:
    if facts is not None:
        resolved = _compile_resolved(c, d, facts)
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
    if isinstance(c, AnyOf | AllOf):
        parts = [_compile(p, d, facts) for p in c.parts]
        join = _or if isinstance(c, AnyOf) else _and
        return lambda r: join([p(r) for p in parts])
    raise TypeError(f"unknown constraint {c!r}")


def _compile_resolved(c: Constraint, d: Dialect, facts: _Facts) -> _Cond | None:
    """The leaves whose patient sets are read once (see :func:`compile_groups`); None for
    the others, which compile as usual."""
    if isinstance(c, OrganizationPatients):
        sql, params = _organization_keys(c.organization_id)
        return _resolved_set(facts, sql, params, _organization_patients(c, d))
    if isinstance(c, ReferredPatients):
        sql, params = _referral_keys(c)
        return _resolved_set(facts, sql, params, _referred_patients(c, d))
    if isinstance(c, ConsentedPatients):
        return _consented_resolved(c, d, facts)
    if isinstance(c, HideLabels):
        return _hide_labels_resolved(c, d, facts)
    return None


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


def _referral_keys(c: ReferredPatients) -> Sql:
    """The patients with an active referral to the practitioner or organization, in force
    at ``c.at`` (one column of patient keys)."""
    actor_sql, actor_params = _actor_match("rs", c.organization_id, c.practitioner_id)
    return (
        "SELECT rs.patient_key FROM idx_reference rs "
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


def _consent_rule(d: Dialect, cr: str, r: str | None, kind: str) -> Sql:
    """The Consent row ``cr`` (a resources alias) is an active patient-privacy consent whose
    root provision is of ``kind``, in force now, and — for a permit — applies to row ``r``
    (class, action, securityLabel) with nothing Huitong cannot evaluate. ``r`` None: a permit
    that names no class and no security label, so it applies to every row of the patient."""
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
        if r is None:
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


def _consented_resolved(c: ConsentedPatients, d: Dialect, facts: _Facts) -> _Cond:
    """:func:`_consented_patients` with the row-independent parts read once: the patients
    whose consent permits every row (no class, no security label) and the patients whose
    consent denies. A permit limited to some types or labels keeps its correlated test, and
    only when one names this organization or practitioner at all."""
    actor_sql, actor_params = _actor_match("ca", c.organization_id, c.practitioner_id)
    deny_actor_sql, deny_actor_params = _actor_match("da", c.organization_id, c.practitioner_id)
    deny_sql, deny_params = _consent_rule(d, "dr", None, "deny")
    dperiod_sql, dperiod_params = _in_period("dr", c.at)
    deny_i = facts.key_set(
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
    correlated = _consented_patients(c, d)
    if c.default_permit:
        def opt_out(r: str) -> Sql:
            denies = facts.values[deny_i]
            if len(denies) > MAX_RESOLVED_KEYS:
                return correlated(r)
            return _and([(f"{r}.patient_key IS NOT NULL", []), _key_not_in(r, denies)])

        return opt_out
    rule_sql, rule_params = _consent_rule(d, "cr", None, "permit")
    period_sql, period_params = _in_period("cr", c.at)
    permit_i = facts.key_set(
        "SELECT ca.patient_key FROM idx_reference ca CROSS JOIN resources cr "
        "WHERE ca.res_type = 'Consent' "
        f"AND ca.param = 'actor' AND ({actor_sql}) AND cr.rid = ca.rid "
        f"AND {period_sql} AND {rule_sql} "
        # and permits naming no actor (any treating clinician)
        "UNION SELECT cr.patient_key FROM resources cr WHERE cr.res_type = 'Consent' "
        "AND cr.rid IN (SELECT ct.rid FROM idx_token ct WHERE ct.res_type = 'Consent' "
        "AND ct.param = 'status' AND ct.code = 'active') "
        f"AND {_no_actor('cr')} AND {period_sql} AND {rule_sql}",
        [*actor_params, *period_params, *rule_params, *period_params, *rule_params],
    )
    # any consent naming this actor, or no actor, that is limited to some types or labels
    # (a superset of those the correlated test would admit: status and period are left to
    # that test)
    limited = (f"({_json(d, 'cr.content', 'provision', 'class')} IS NOT NULL OR "
               f"{_json(d, 'cr.content', 'provision', 'securityLabel')} IS NOT NULL)")
    limited_i = facts.exists(
        "SELECT 1 FROM idx_reference ca CROSS JOIN resources cr WHERE ca.res_type = 'Consent' "
        f"AND ca.param = 'actor' AND ({actor_sql}) AND cr.rid = ca.rid AND {limited} "
        "UNION ALL SELECT 1 FROM resources cr WHERE cr.res_type = 'Consent' "
        f"AND NOT cr.deleted AND {_json_text(d, 'cr.content', 'provision', 'type')} = 'permit' "
        f"AND {_no_actor('cr')} AND {limited}",
        actor_params,
    )

    def cond(r: str) -> Sql:
        permits, denies = facts.values[permit_i], facts.values[deny_i]
        if len(permits) > MAX_RESOLVED_KEYS or len(denies) > MAX_RESOLVED_KEYS:
            return correlated(r)
        permit = _key_in(r, permits)
        if facts.values[limited_i]:
            permit = _or([permit, correlated(r)])  # deny included there too: harmless
        return _and([permit, _key_not_in(r, denies)])

    return cond


def _hide_labels_resolved(c: HideLabels, d: Dialect, facts: _Facts) -> _Cond:
    """:func:`_hide_labels`, reduced to the row's own labels when no consent naming this
    organization or practitioner lists any of them (the usual case): then nothing can lift
    a hidden label, and the test needs no consent lookup per row."""
    labels = sorted(c.labels)
    full = _hide_labels(c, d)
    if not labels or not (c.organization_id or c.practitioner_id):
        return full
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

    def cond(r: str) -> Sql:
        if facts.values[grantable_i]:
            return full(r)
        row_sql, row_params = _one_of(d, "ht.code", labels)
        # "IS TRUE" keeps the label list out of the index condition: one descent to the
        # row's few _security entries instead of one per label (same rows either way)
        return (
            f"NOT EXISTS (SELECT 1 FROM idx_token ht WHERE ht.rid = {r}.rid "
            f"AND ht.param = '_security' AND ({row_sql}) IS TRUE)",
            row_params,
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
    if not parts:
        return "1 = 1", []
    if len(parts) == 1:
        return parts[0]
    return " AND ".join(f"({s})" for s, _ in parts), [v for _, p in parts for v in p]


def _or(parts: Sequence[Sql]) -> Sql:
    if not parts:
        return "1 = 0", []
    if len(parts) == 1:
        return parts[0]
    return "(" + " OR ".join(f"({s})" for s, _ in parts) + ")", [v for _, p in parts for v in p]
