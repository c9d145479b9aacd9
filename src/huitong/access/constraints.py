"""What a permitted request may see, as data the store compiles into SQL.

A :class:`~huitong.access.decision.Decision` that allows a read carries one of these trees.
They describe *which rows* qualify — never SQL text — so each engine compiles them its own
way, inside the query, for search, ``Bundle.total``, includes, history and ``$everything``
alike. Leaves name a set of patients (by their compartment key) or a condition on the
resource; :class:`AnyOf` / :class:`AllOf` combine them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AllOf",
    "AnyOf",
    "BreakGlassPatient",
    "ConsentedPatients",
    "Constraint",
    "HideLabels",
    "MatchesSearch",
    "OrganizationPatients",
    "PatientsIn",
    "ReferredPatients",
    "SharedPatient",
    "Unrestricted",
    "all_of",
    "any_of",
]


@dataclass(frozen=True, slots=True)
class Unrestricted:
    """Every row of the type (configuration data, the audit log for auditors, system
    clients with ``system/`` scopes)."""


@dataclass(frozen=True, slots=True)
class PatientsIn:
    """Rows in the compartments of exactly these patients (a patient's linked records, the
    launch patient of ``patient/`` scopes)."""

    patient_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class OrganizationPatients:
    """Patients registered at, or seen by, the organization (``managingOrganization``, or an
    Encounter whose ``serviceProvider`` is it)."""

    organization_id: str


@dataclass(frozen=True, slots=True)
class ReferredPatients:
    """Patients with a referral open at ``at`` to the practitioner or the organization."""

    practitioner_id: str | None
    organization_id: str | None
    at: int


@dataclass(frozen=True, slots=True)
class ConsentedPatients:
    """Patients whose active consents permit this organization / practitioner to see
    ``resource_type`` at ``at`` (:func:`huitong.access.consent.evaluate_consents`), or, when
    ``default_permit`` (opt-out region), patients with no applicable consent either."""

    organization_id: str | None
    practitioner_id: str | None
    resource_type: str
    at: int
    default_permit: bool = False


@dataclass(frozen=True, slots=True)
class BreakGlassPatient:
    """One patient opened by break-glass, until ``until``."""

    patient_id: str
    until: int


@dataclass(frozen=True, slots=True)
class SharedPatient:
    """One patient, through a redeemed share code, until ``until``."""

    patient_id: str
    code_id: str
    until: int


@dataclass(frozen=True, slots=True)
class MatchesSearch:
    """Rows matching these search parameters (a SMART scope's restriction, e.g.
    ``category=laboratory``), compiled like the same parameters in a search."""

    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class HideLabels:
    """Rows carrying any of ``labels`` (``meta.security`` codes) are excluded unless the
    patient's consent grants that label explicitly to this organization / practitioner."""

    labels: frozenset[str]
    organization_id: str | None
    practitioner_id: str | None
    at: int


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Constraint, ...]


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Constraint, ...]


Constraint = (
    Unrestricted | PatientsIn | OrganizationPatients | ReferredPatients | ConsentedPatients
    | BreakGlassPatient | SharedPatient | MatchesSearch | HideLabels | AnyOf | AllOf
)  # fmt: skip


def any_of(*parts: Constraint) -> Constraint:
    """A union, simplified: one part is itself; any unrestricted part makes it unrestricted."""
    flat = tuple(dict.fromkeys(p for part in parts for p in _flatten(part, AnyOf)))
    if any(isinstance(p, Unrestricted) for p in flat):
        return Unrestricted()
    return flat[0] if len(flat) == 1 else AnyOf(flat)


def all_of(*parts: Constraint) -> Constraint:
    """An intersection, simplified: unrestricted parts drop out."""
    flat = tuple(
        dict.fromkeys(
            p for part in parts for p in _flatten(part, AllOf) if not isinstance(p, Unrestricted)
        )
    )
    if not flat:
        return Unrestricted()
    return flat[0] if len(flat) == 1 else AllOf(flat)


def _flatten(c: Constraint, kind: type[AnyOf] | type[AllOf]) -> tuple[Constraint, ...]:
    return c.parts if isinstance(c, kind) else (c,)
