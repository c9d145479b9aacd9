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

__all__ = ["compile_by_type", "compile_constraint", "compile_groups", "type_generic"]

Sql = tuple[str, list[Any]]
# A compiled leaf: given the resources alias, a condition with its params.
_Cond = Callable[[str], Sql]

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
    groups: Sequence[tuple[Sequence[str], Constraint | None]], dialect: Dialect
) -> Restrict | None:
    """:func:`compile_by_type` for types already grouped: ``(types, constraint)`` pairs.
    Groups whose constraints differ only in the consent's resource type are merged (the SQL
    compares a consent's class with the row's own type), so the clinical types share one
    condition."""
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
    parts: list[tuple[list[str], _Cond | None]] = [
        (sorted(types), None if isinstance(c, Unrestricted) else _compile(c, dialect))
        for c, types in merged.items()
    ]

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


def _compile(c: Constraint, d: Dialect) -> _Cond:
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
        parts = [_compile(p, d) for p in c.parts]
        join = _or if isinstance(c, AnyOf) else _and
        return lambda r: join([p(r) for p in parts])
    raise TypeError(f"unknown constraint {c!r}")


def _organization_patients(c: OrganizationPatients, d: Dialect) -> _Cond:
    org = c.organization_id

    def cond(r: str) -> Sql:
        return (
            f"{_hint(d)}{r}.patient_key IN (SELECT op.patient_key FROM idx_reference op "
            "WHERE op.res_type = 'Patient' AND op.param = 'organization' "
            "AND op.target_id = ? AND op.target_type = 'Organization' "
            "UNION SELECT oe.patient_key FROM idx_reference oe "
            "WHERE oe.res_type = 'Encounter' AND oe.param = 'service-provider' "
            "AND oe.target_id = ? AND oe.target_type = 'Organization')",
            [org, org],
        )

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


def _referred_patients(c: ReferredPatients, d: Dialect) -> _Cond:
    actor_sql, actor_params = _actor_match("rs", c.organization_id, c.practitioner_id)
    at = c.at

    def cond(r: str) -> Sql:
        return (
            f"{_hint(d)}{r}.patient_key IN (SELECT rs.patient_key FROM idx_reference rs "
            "WHERE rs.res_type = 'ServiceRequest' AND rs.param = 'performer' "
            f"AND ({actor_sql}) "
            "AND EXISTS (SELECT 1 FROM idx_token rt WHERE rt.rid = rs.rid "
            "AND rt.param = 'status' AND rt.code = 'active') "
            "AND NOT EXISTS (SELECT 1 FROM idx_date rd WHERE rd.rid = rs.rid "
            "AND rd.param = 'occurrence' AND NOT (rd.lo <= ? AND ? <= rd.hi)))",
            [*actor_params, at, at],
        )

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


def _consent_rule(d: Dialect, cr: str, r: str, kind: str) -> Sql:
    """The Consent row ``cr`` (a resources alias) is an active patient-privacy consent whose
    root provision is of ``kind``, in force now, and — for a permit — applies to row ``r``
    (class, action, securityLabel) with nothing Huitong cannot evaluate."""
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
        src, _ = _json_items(d, f"{cr}.content", "provision", "class")
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


def _consented_patients(c: ConsentedPatients, d: Dialect) -> _Cond:
    actor_sql, actor_params = _actor_match("ca", c.organization_id, c.practitioner_id)
    deny_actor_sql, deny_actor_params = _actor_match("da", c.organization_id, c.practitioner_id)

    def cond(r: str) -> Sql:
        rule_sql, rule_params = _consent_rule(d, "cr", r, "permit")
        period_sql, period_params = _in_period("cr", c.at)
        permit = (
            "EXISTS (SELECT 1 FROM idx_reference ca CROSS JOIN resources cr "
            f"WHERE ca.patient_key = {r}.patient_key AND ca.res_type = 'Consent' "
            f"AND ca.param = 'actor' AND ({actor_sql}) AND cr.rid = ca.rid "
            f"AND {period_sql} AND {rule_sql})",
            [*actor_params, *period_params, *rule_params],
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
        granted = (
            "EXISTS (SELECT 1 FROM idx_reference ga CROSS JOIN resources gr "
            f"WHERE ga.patient_key = {r}.patient_key AND ga.res_type = 'Consent' "
            f"AND ga.param = 'actor' AND ({actor_sql}) AND gr.rid = ga.rid "
            "AND EXISTS (SELECT 1 FROM idx_token gl WHERE gl.rid = gr.rid "
            "AND gl.param = 'security-label' AND gl.code = ht.code) "
            f"AND {period_sql} AND {rule_sql})",
            [*actor_params, *period_params, *rule_params],
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
