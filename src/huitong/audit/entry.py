"""One audit entry as data, and its canonical serialisation (the bytes the Merkle log hashes).

Canonical form (version 1) — the same entry always gives the same bytes:

- a JSON object (RFC 8259) encoded as UTF-8, no byte-order mark, no insignificant whitespace;
- object keys sorted by code point at every level (all keys are ASCII);
- a field whose value is absent (``None``) or an empty list is left out, never ``null``/``[]``;
- numbers are integers only (times are microseconds since the epoch, UTC), so there is no
  floating-point formatting to disagree about;
- strings are emitted as given (no Unicode normalisation), with JSON's minimal escaping;
- ``patients`` and ``resources`` are sorted and de-duplicated when the entry is built, so the
  order the store happened to return rows in does not change the hash; so is ``access`` (the
  basis per patient, by patient id), which is left out when every patient shares the
  entry's own basis — entries written before it existed keep their exact bytes;
- ``"v": 1`` names the format, so a future version can be told apart.

:func:`parse_entry` accepts only bytes that re-serialise to themselves, so a stored row that
was edited into a different-but-equivalent JSON spelling is still caught.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from huitong.clock import Clock

__all__ = [
    "ACTIONS",
    "AccessBasis",
    "Actor",
    "AuditEntry",
    "BasisKind",
    "Outcome",
    "PatientBasis",
    "canonical_bytes",
    "parse_entry",
]

FORMAT_VERSION = 1

# What was done. FHIR interactions use the codes of
# http://hl7.org/fhir/R4/valueset-type-restful-interaction.html; the rest are platform events.
ACTIONS = frozenset(
    {
        "read", "vread", "update", "patch", "delete", "history-instance", "history-type",
        "history-system", "create", "search-type", "search-system", "batch", "transaction",
        "operation", "capabilities",
        "export", "login", "login-failed", "logout", "token-issued", "consent-change",
        "break-glass", "share-code-issued", "share-code-redeemed", "audit-read",
        # the integration engine's stored inbound messages, shown or processed again by an
        # operator (server/ingest_api.py)
        "message-read", "message-reprocess",
    }
)  # fmt: skip


class Outcome(StrEnum):
    """https://hl7.org/fhir/R4/valueset-audit-event-outcome.html, by name."""

    SUCCESS = "success"  # 0
    MINOR_FAILURE = "minor-failure"  # 4: e.g. access denied, request refused
    SERIOUS_FAILURE = "serious-failure"  # 8
    MAJOR_FAILURE = "major-failure"  # 12


class BasisKind(StrEnum):
    """Why access was granted or refused (STYLE principle 8: this is what the patient sees)."""

    ROLE = "role"  # the principal's role alone (own organization, own record, admin...)
    CONSENT = "consent"  # a Consent resource; ``ref`` is its id
    BREAK_GLASS = "break-glass"  # emergency access; ``justification`` and ``until`` are set
    SHARE_CODE = "share-code"  # a patient's one-time share code; ``ref`` is the code's id
    REFERRAL = "referral"  # the patient was referred to the requester; ``ref`` its id
    SCOPE = "scope"  # a system client's granted scopes
    DENIED = "denied"  # refused; ``code`` says which rule refused


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted. ``user`` and ``client`` are account ids (never names); ``organization`` and
    ``practitioner`` are FHIR ids of the Organization / Practitioner they act for."""

    role: str
    user: str | None = None
    client: str | None = None
    organization: str | None = None
    practitioner: str | None = None
    address: str | None = None  # network address the request came from


@dataclass(frozen=True, slots=True)
class AccessBasis:
    """The access decision behind the action: its ``kind``, the rule's ``code``
    (e.g. ``clinician-own-organization``), the consent / share code / referral id in ``ref``,
    and for break-glass the stated ``justification`` and the end of the window (``until``)."""

    kind: BasisKind
    code: str
    ref: str | None = None
    justification: str | None = None
    until: int | None = None


@dataclass(frozen=True, slots=True)
class PatientBasis:
    """Why one patient's data was reachable in this action: the consent, referral, share
    code, break-glass session or care relationship that admitted *that* patient."""

    patient: str
    basis: AccessBasis


def _sorted_unique(items: Iterable[str]) -> tuple[str, ...]:
    # A read touches one resource and one patient: a tuple of at most one is already sorted
    # and unique (building a set and a list for it was a tenth of a read's entry).
    if type(items) is tuple and len(items) < 2:
        return items
    return tuple(sorted(set(items)))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited action.

    ``recorded`` comes from the injected clock (microseconds, UTC); ``resources`` are
    references (``Observation/123``) the action touched; ``patients`` the Patient ids whose
    records it touched; ``purpose`` a v3 ActReason code
    (http://terminology.hl7.org/CodeSystem/v3-ActReason: ``TREAT``, ``ETREAT`` for
    break-glass, ``PATRQT``, ``PUBHLTH``, ``HRESCH``, ``HOPERAT``...).
    """

    recorded: int
    action: str
    actor: Actor
    basis: AccessBasis
    outcome: Outcome = Outcome.SUCCESS
    request_id: str | None = None
    resource_type: str | None = None
    resources: tuple[str, ...] = field(default=())
    patients: tuple[str, ...] = field(default=())
    purpose: str = "TREAT"
    query: str | None = None  # the search query as received (stored in the audit DB only)
    detail: str | None = None  # outcome description, e.g. why a login failed
    # the basis per patient where patients were reached on different grounds (else the
    # entry's ``basis`` is every patient's); see :meth:`basis_for`
    access: tuple[PatientBasis, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")
        if not isinstance(self.recorded, int) or self.recorded < 0:
            raise ValueError("recorded is microseconds since the epoch (a non-negative int)")
        object.__setattr__(self, "resources", _sorted_unique(self.resources))
        object.__setattr__(self, "patients", _sorted_unique(self.patients))
        if type(self.outcome) is not Outcome:
            object.__setattr__(self, "outcome", Outcome(self.outcome))
        if not self.access:  # the common case: every patient on the entry's own basis
            object.__setattr__(self, "access", ())
            return
        by_patient = {a.patient: a for a in self.access}
        if set(by_patient) - set(self.patients):
            raise ValueError("an access basis names a patient the entry does not")
        object.__setattr__(self, "access", tuple(by_patient[p] for p in sorted(by_patient)))

    def basis_for(self, patient_id: str) -> AccessBasis:
        """The basis on which ``patient_id``'s data was reached in this action."""
        for a in self.access:
            if a.patient == patient_id:
                return a.basis
        return self.basis

    @classmethod
    def now(cls, clock: Clock, **fields: Any) -> AuditEntry:
        """An entry stamped with ``clock()``."""
        return cls(recorded=clock(), **fields)

    def to_json(self) -> dict[str, Any]:
        """The canonical object (before encoding): absent and empty fields left out."""
        actor = _compact(
            role=self.actor.role, user=self.actor.user, client=self.actor.client,
            organization=self.actor.organization, practitioner=self.actor.practitioner,
            address=self.actor.address,
        )  # fmt: skip
        return _compact(
            v=FORMAT_VERSION, recorded=self.recorded, action=self.action, actor=actor,
            basis=_basis_json(self.basis), outcome=self.outcome.value,
            request=self.request_id, type=self.resource_type, resources=list(self.resources),
            patients=list(self.patients), purpose=self.purpose, query=self.query,
            detail=self.detail,
            access=[{"patient": a.patient, **_basis_json(a.basis)} for a in self.access],
        )  # fmt: skip


def _basis_json(b: AccessBasis) -> dict[str, Any]:
    return _compact(kind=b.kind.value, code=b.code, ref=b.ref, justification=b.justification,
                    until=b.until)  # fmt: skip


def _basis_of(b: dict[str, Any]) -> AccessBasis:
    return AccessBasis(kind=BasisKind(b["kind"]), code=b["code"], ref=b.get("ref"),
                       justification=b.get("justification"), until=b.get("until"))  # fmt: skip


def _compact(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None and v != []}


def canonical_bytes(entry: AuditEntry) -> bytes:
    """The entry's canonical serialisation (see the module docstring): what is hashed."""
    return orjson.dumps(entry.to_json(), option=orjson.OPT_SORT_KEYS)


def parse_entry(data: bytes) -> AuditEntry:
    """The entry stored as ``data``; ``ValueError`` if ``data`` is not canonical version-1
    JSON of a valid entry (including any other spelling of the same content)."""
    try:
        obj = orjson.loads(data)
        if obj.get("v") != FORMAT_VERSION:
            raise ValueError(f"unsupported audit entry format {obj.get('v')!r}")
        a, b = obj["actor"], obj["basis"]
        entry = AuditEntry(
            recorded=obj["recorded"],
            action=obj["action"],
            actor=Actor(
                role=a["role"], user=a.get("user"), client=a.get("client"),
                organization=a.get("organization"), practitioner=a.get("practitioner"),
                address=a.get("address"),
            ),
            basis=_basis_of(b),
            outcome=Outcome(obj["outcome"]),
            request_id=obj.get("request"),
            resource_type=obj.get("type"),
            resources=tuple(obj.get("resources", ())),
            patients=tuple(obj.get("patients", ())),
            purpose=obj["purpose"],
            query=obj.get("query"),
            detail=obj.get("detail"),
            access=tuple(PatientBasis(a["patient"], _basis_of(a)) for a in obj.get("access", ())),
        )  # fmt: skip
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not an audit entry: {exc}") from exc
    if canonical_bytes(entry) != data:
        raise ValueError("audit entry bytes are not in canonical form")
    return entry
