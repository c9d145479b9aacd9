"""The :class:`~huitong.quality.context.QualityContext` of a write in progress, over the
repository and (optionally) the identity service.

Facts come from the writing transaction (``tx.read``), so a Patient written earlier in the
same transaction bundle is the subject of the Observations that follow it. Lookups are
memoised per transaction in :class:`TxFacts` (a bundle of one patient's record reads its
Patient once, not once per Observation); the service keeps that memo fresh when a Patient or
Encounter is rewritten inside the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from huitong.fhir.organizations import OWN_ORGANIZATION_ELEMENTS, organization_reference
from huitong.fhir.organizations import own_organization as _own_organization
from huitong.quality.context import RecordedSex, Subject
from huitong.quality.predicates import NOT_LOOKED_UP, subject_reference
from huitong.store.repository import Transaction

__all__ = [
    "UNKNOWN_ORGANIZATION",
    "IdentityLinks",
    "RepositoryContext",
    "TxFacts",
    "organization_reference",
    "recorded_sexes",
]

UNKNOWN_ORGANIZATION = "unknown"
# Most resources name none of these elements (a Synthea Observation, Procedure or Claim
# takes its institution from its encounter): one set test then stands for eight lookups.
_OWN_KEYS = frozenset(OWN_ORGANIZATION_ELEMENTS)

# Elements that name the institution responsible for a resource, most specific first
# (https://hl7.org/fhir/R4/references.html). A performer or requester counts only when it is
# an Organization.

class IdentityLinks(Protocol):
    """What the context needs of :class:`huitong.mpi.service.IdentityService`."""

    def golden_of(self, source_id: str, *, tx: Transaction | None = None) -> str | None: ...

    def sources_of(self, golden_id: str, *, tx: Transaction | None = None) -> list[str]: ...


@dataclass(slots=True)
class TxFacts:
    """What one transaction has learnt so far: Patients (subject facts and institution) and
    Encounters (institution) by reference; ``None`` cached for a missing one."""

    patients: dict[str, tuple[Subject, str | None] | None] = field(default_factory=dict)
    encounters: dict[str, str | None] = field(default_factory=dict)
    # A reference as written ("Patient/1", "https://…/Patient/1") → its "Patient/<id>" key
    # (None: not a local reference), so each spelling is parsed once per transaction.
    keys: dict[tuple[str, str], str | None] = field(default_factory=dict)
    # A subject reference as written → its Patient's entry above (a bundle's resources name
    # their Patient the same way hundreds of times); emptied whenever a Patient is written.
    subjects: dict[str, tuple[Subject, str | None] | None] = field(default_factory=dict)
    # An encounter reference as written → its institution (None: none known); emptied
    # whenever an Encounter is written.
    encounter_orgs: dict[str, str | None] = field(default_factory=dict)

    def key(self, reference: str, rtype: str) -> str | None:
        found = self.keys.get((reference, rtype), "")
        if found == "":
            rid = _local(reference, rtype)
            found = self.keys[(reference, rtype)] = f"{rtype}/{rid}" if rid is not None else None
        return found

    def remember(self, resource: Mapping[str, Any]) -> None:
        """Refresh the memo after ``resource`` (a Patient or Encounter) was written."""
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if rtype == "Patient":
            self.patients[f"Patient/{rid}"] = (
                Subject.from_patient(resource), _own_organization(resource)
            )
            if self.subjects:
                self.subjects.clear()
        elif rtype == "Encounter":
            self.encounters[f"Encounter/{rid}"] = _own_organization(resource)
            if self.encounter_orgs:
                self.encounter_orgs.clear()


_UNSEEN: Any = object()


def _local(reference: str, rtype: str) -> str | None:
    """The id of a local ``rtype/<id>`` reference."""
    head, sep, rid = reference.rpartition(f"{rtype}/")
    return rid if sep and rid and "/" not in rid and (not head or head.endswith("/")) else None


class RepositoryContext:
    """A :class:`~huitong.quality.context.QualityContext` for the resource being written.

    ``received_at`` is the service's clock at the write; ``source_organization`` the
    institution the resource belongs to (see :meth:`organization_of`); ``live_since`` when
    that institution went live (the service sets it). The write path keeps one per
    transaction and points it at each resource in turn (:meth:`prepare`).
    """

    __slots__ = ("_facts", "_identity", "_tx", "live_since", "now", "prepared_subject",
                 "received_at", "source_organization")

    def __init__(
        self, tx: Transaction, facts: TxFacts, *, now: int, identity: IdentityLinks | None,
        resource: Mapping[str, Any] | None = None,
    ) -> None:
        self._tx = tx
        self._facts = facts
        self._identity = identity
        self.now = now
        self.received_at: int | None = now
        self.live_since: int | None = None
        # The prepared resource's subject Patient (a Subject or None; NOT_LOOKED_UP for a
        # Patient, its own subject), looked up once for its institution and for the rules
        # (Facts.reset takes it).
        self.prepared_subject: Any = NOT_LOOKED_UP
        self.source_organization: str | None = (
            self.prepare(resource, now) if resource is not None else None
        )

    def prepare(self, resource: Mapping[str, Any], now: int) -> str | None:
        """Point the context at ``resource``, checked at ``now``; its institution."""
        self.now = now
        self.received_at = now
        subject = subject_reference(resource)
        if subject is None:
            self.prepared_subject = None
            found = None
        elif resource.get("resourceType") == "Patient":
            self.prepared_subject = NOT_LOOKED_UP
            found = _UNSEEN  # only if the Patient names no institution (its stored version)
        else:
            found = self._patient(subject)
            self.prepared_subject = found[0] if found else None
        org = self.source_organization = self._organization(resource, subject, found)
        return org

    def _patient(self, reference: str) -> tuple[Subject, str | None] | None:
        facts = self._facts
        found = facts.subjects.get(reference, _UNSEEN)
        if found is not _UNSEEN:
            return found  # type: ignore[no-any-return]
        key = facts.key(reference, "Patient")
        if key is None:
            return None
        patients = facts.patients
        if key not in patients:
            stored = self._tx.read("Patient", key[8:])
            if stored is None or stored.deleted:
                patients[key] = None
            else:
                facts.remember(stored.resource)
        found = facts.subjects[reference] = patients.get(key)
        return found  # type: ignore[no-any-return]

    def subject(self, reference: str) -> Subject | None:
        found = self._patient(reference)
        return found[0] if found else None

    def organization_of(self, resource: Mapping[str, Any]) -> str | None:
        """The resource's institution: its own (``Patient.managingOrganization``,
        ``Encounter.serviceProvider``, an Organization performer…), else its encounter's
        service provider, else its subject Patient's managing organization."""
        return self._organization(resource, subject_reference(resource), _UNSEEN)

    def _organization(
        self, resource: Mapping[str, Any], subject: str | None,
        found: tuple[Subject, str | None] | None,
    ) -> str | None:
        """:meth:`organization_of`; ``found``: the subject's entry, if already looked up
        (``_UNSEEN`` if not)."""
        own = None if _OWN_KEYS.isdisjoint(resource) else _own_organization(resource)
        if own is not None:
            return own
        encounter = resource.get("encounter") or resource.get("context")
        ref = encounter.get("reference") if isinstance(encounter, dict) else None
        if isinstance(ref, str):
            # Most resources of a bundle name their encounter the same way: its institution
            # is remembered per reference as written.
            memo = self._facts.encounter_orgs
            org = memo.get(ref, _UNSEEN)
            if org is _UNSEEN:
                org = memo[ref] = self._encounter_organization(ref)
            if org is not None:
                return org  # type: ignore[no-any-return]
        if found is _UNSEEN:
            found = self._patient(subject) if subject else None
        return found[1] if found else None

    def _encounter_organization(self, ref: str) -> str | None:
        key = self._facts.key(ref, "Encounter")
        if key is None:
            return None
        encounters = self._facts.encounters
        if key not in encounters:
            stored = self._tx.read("Encounter", key[10:])
            encounters[key] = (
                None if stored is None or stored.deleted
                else _own_organization(stored.resource)
            )  # fmt: skip
        return encounters[key]

    def sexes_elsewhere(self, patient: Mapping[str, Any]) -> Sequence[RecordedSex]:
        """Genders other institutions recorded for the person, through the identity
        service's links (none without an identity service, or before the record is linked:
        :meth:`QualityService` checks a new record again when its golden record is built)."""
        pid = patient.get("id")
        if self._identity is None or not isinstance(pid, str):
            return ()
        meta = patient.get("meta")
        if type(meta) is dict and meta.get("versionId") == "1":
            # Its first version: the identity service links a record only after it is
            # written, so there are no links to read (and reading them in the transaction
            # would flush its buffered rows, a round trip a bundle for nothing).
            return ()
        # Read in the write's own transaction: the links as this write sees them, and no
        # connection and commit of their own for every Patient written.
        golden = self._identity.golden_of(pid, tx=self._tx)
        if golden is None:
            return ()
        sources = [s for s in self._identity.sources_of(golden, tx=self._tx) if s != pid]
        return recorded_sexes(self._tx, sources, _own_organization(patient))


def recorded_sexes(
    tx: Transaction, source_ids: Sequence[str], own_organization: str | None
) -> list[RecordedSex]:
    """The genders the Patient records ``source_ids`` carry, except those of
    ``own_organization`` (one institution's records are not "elsewhere")."""
    out: list[RecordedSex] = []
    for sid in source_ids:
        stored = tx.read("Patient", sid)
        if stored is None or stored.deleted:
            continue
        record = stored.resource
        org = _own_organization(record) or UNKNOWN_ORGANIZATION
        gender = record.get("gender")
        if isinstance(gender, str) and (own_organization is None or org != own_organization):
            out.append(RecordedSex(org, gender))
    return out
