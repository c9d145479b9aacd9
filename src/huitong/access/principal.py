"""Who is asking: roles, the authenticated principal, and the facts about one patient.

All data; nothing here decides anything (see :mod:`huitong.access.policy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from huitong.access.scopes import ScopeSet

if TYPE_CHECKING:
    from huitong.access.facts_cache import FactsTicket

__all__ = ["BreakGlass", "PatientContext", "Principal", "Referral", "Role", "ShareGrant"]


class Role(StrEnum):
    CLINICIAN = "clinician"
    PATIENT = "patient"
    PUBLIC_HEALTH = "public-health"
    RESEARCHER = "researcher"
    PLATFORM_ADMIN = "platform-admin"
    AUDITOR = "auditor"
    SYSTEM = "system"  # a backend client (SMART backend services), no user


@dataclass(frozen=True, slots=True)
class BreakGlass:
    """An emergency-access session a clinician opened for one patient: valid from ``start``
    until ``until`` (microseconds, UTC) and only with a stated ``justification``."""

    patient_id: str
    justification: str
    start: int
    until: int

    def active(self, now: int) -> bool:
        return bool(self.justification.strip()) and self.start <= now < self.until


@dataclass(frozen=True, slots=True)
class ShareGrant:
    """Time-limited access from a patient's one-time share code, once redeemed. ``code_id``
    identifies the code (never the code itself); ``resource_types`` empty means every
    non-sensitive type; ``labels`` are sensitive categories the patient chose to include."""

    patient_id: str
    code_id: str
    until: int
    resource_types: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()

    def covers(self, resource_type: str, now: int) -> bool:
        return now < self.until and (
            not self.resource_types or resource_type in self.resource_types
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    ``patient_ids`` (patient role) are all the Patient records linked to the person;
    ``scopes`` is None for a first-party session (the role policy alone applies) and the
    token's scopes otherwise; ``launch_patient`` is the patient of ``patient/`` scopes.
    ``facts`` is what this request may use of the server's kept access facts
    (access/facts_cache.py); it is not part of who the principal is (not compared).
    """

    role: Role
    user_id: str | None = None
    client_id: str | None = None
    organization_id: str | None = None
    practitioner_id: str | None = None
    patient_ids: frozenset[str] = frozenset()
    scopes: ScopeSet | None = None
    launch_patient: str | None = None
    break_glass: tuple[BreakGlass, ...] = ()
    share_grants: tuple[ShareGrant, ...] = ()
    facts: FactsTicket | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Referral:
    """An open referral of the patient to a practitioner and/or organization."""

    id: str
    practitioner_id: str | None = None
    organization_id: str | None = None
    start: int = 0
    end: int | None = None

    def open_for(self, practitioner_id: str | None, organization_id: str | None, now: int) -> bool:
        if not self.start <= now or (self.end is not None and now >= self.end):
            return False
        return (practitioner_id is not None and practitioner_id == self.practitioner_id) or (
            organization_id is not None and organization_id == self.organization_id
        )


@dataclass(frozen=True, slots=True)
class PatientContext:
    """What the store knows about one patient, loaded before deciding a read of their data:
    the organizations where they are registered or were seen, their open referrals, their
    Consent resources, and the security labels of the resource being read (if one is)."""

    patient_id: str
    organizations: frozenset[str] = frozenset()
    referrals: tuple[Referral, ...] = ()
    consents: tuple[dict[str, Any], ...] = field(default=())
    security_labels: frozenset[str] = frozenset()
