"""Patients' Consent resources: building them, guarding who writes them, and the decision
endpoint's answer (issue 5, "Consent"; https://hl7.org/fhir/R4/consent.html).

A patient manages the Consents of their own record and no one else's. The policy already
lets the patient role write the ``Consent`` type and refuses clinicians; what it cannot see
per resource — *whose* consent it is — :func:`install_consent_guard` checks inside the write
transaction: for a request made by a patient (the principal of the request is carried in
:data:`CURRENT_PRINCIPAL`, set by the FHIR endpoint), a created or updated Consent must name
one of the patient's own records and have the ``patient-privacy`` scope, and an existing
Consent being replaced or deleted must be theirs too. Every Consent change is reported to
``on_event`` (``consent-change``) inside the same transaction.

The grants the convenience API builds follow what the store enforces in SQL
(:mod:`huitong.access.sql`): one permit provision (actor, resource-type classes, period, the
``access`` action) and, when sensitive categories are granted, a second Consent whose
provision lists them in ``securityLabel`` — a permit with labels applies only to resources
carrying them, so the labels cannot ride on the first one. Both carry the same grant
identifier, and revoking one revokes both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from huitong.access.consent import SENSITIVE_LABELS, ConsentActor, evaluate_consents
from huitong.access.consent_events import (
    ConsentEvent,
    ConsentEventSink,
    discard_consent_event,
)
from huitong.access.principal import Principal, Role
from huitong.fhir.dates import format_instant
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.store.repository import Repository, StoredResource

__all__ = [
    "CURRENT_PRINCIPAL",
    "GRANT_SYSTEM",
    "ConsentSummary",
    "build_grant",
    "consent_decision",
    "install_consent_guard",
    "patient_consents",
    "summarize",
]

# The principal of the request being served (None: no authentication, the CLI, the demo).
CURRENT_PRINCIPAL: ContextVar[Principal | None] = ContextVar(
    "huitong_current_principal", default=None
)

GRANT_SYSTEM = "urn:huitong:consent-grant"
_RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def _forbidden(en: str, zh: str) -> FhirError:
    return FhirError(Category.FORBIDDEN, f"{en} / {zh}")


def _codes(concept: Mapping[str, Any] | None) -> set[str]:
    if not isinstance(concept, Mapping):
        return set()
    return {c.get("code") for c in concept.get("coding", ()) if isinstance(c, Mapping)}


def consent_patient(consent: Mapping[str, Any]) -> str | None:
    """The id of the Patient a Consent is about (``Consent.patient``, a relative or
    absolute ``Patient/<id>`` reference), or None."""
    ref = (consent.get("patient") or {}).get("reference")
    if not isinstance(ref, str):
        return None
    parts = ref.rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != "Patient" or not parts[-1]:
        return None
    return parts[-1]


# -- the guard inside the write transaction ------------------------------------------------


def _check_consent_write(tx: Any, content: dict[str, Any]) -> None:
    if content.get("resourceType") != "Consent":
        return
    principal = CURRENT_PRINCIPAL.get()
    if principal is None or principal.role is not Role.PATIENT:
        return  # the policy decides for other roles (clinicians may not write at all)
    own = principal.patient_ids
    if consent_patient(content) not in own:
        raise _forbidden("Patients may manage only the consents of their own record.",
                         "患者只能管理本人记录的同意书。")  # fmt: skip
    if "patient-privacy" not in _codes(content.get("scope")):
        raise _forbidden(
            "Patients manage privacy consents (scope patient-privacy) through this API.",
            "患者通过此接口管理隐私同意书（scope 为 patient-privacy）。",
        )
    existing = tx.read("Consent", content["id"])
    if existing is not None and consent_patient(existing.resource) not in own:
        raise _forbidden("Patients may manage only the consents of their own record.",
                         "患者只能管理本人记录的同意书。")  # fmt: skip


def install_consent_guard(
    repo: Repository, on_event: ConsentEventSink = discard_consent_event
) -> None:
    """Register the ownership check and the ``consent-change`` events on ``repo``."""

    def after_write(tx: Any, stored: StoredResource, content: dict[str, Any] | None) -> None:
        principal = CURRENT_PRINCIPAL.get()
        body = content if content is not None else stored.resource
        pid = consent_patient(body)
        if content is None and principal is not None and principal.role is Role.PATIENT \
                and pid not in principal.patient_ids:  # fmt: skip
            raise _forbidden("Patients may manage only the consents of their own record.",
                             "患者只能管理本人记录的同意书。")  # fmt: skip
        if content is None:
            action = "delete"
        elif body.get("status") == "inactive":
            action = "revoke"
        else:
            action = {"POST": "create"}.get(stored.method, "update")
        on_event(ConsentEvent(
            "consent-change", action, stored.last_updated, pid,
            None if principal is None else (principal.user_id or principal.client_id),
            None if principal is None else principal.role.value,
            None if principal is None else principal.organization_id,
            "", (f"Consent/{stored.id}",),
        ), tx)  # fmt: skip

    repo.add_write_check("consent-owner", _check_consent_write)
    repo.add_write_hook("consent-events", ["Consent"], after_write)


# -- building and reading consents ------------------------------------------------------------


def _date(value: Any, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise FhirError(Category.INVALID, f"'{what}' must be a date / “{what}”须为日期")
    from huitong.fhir.dates import parse_date_range

    try:
        parse_date_range(value)
    except ValueError:
        raise FhirError(Category.INVALID, f"'{what}' must be a date / “{what}”须为日期") from None
    return value


# The region's civil time (China Standard Time): a day a patient picks in a form is a day
# there. Written as a bare date, FHIR leaves its zone open and the index reads it as UTC, so
# a grant made after 16:00 UTC for "today" began eight hours in the future and let nobody in.
REGION_ZONE = timezone(timedelta(hours=8))


def _region_day(value: str, *, end: bool) -> str:
    """A bare date (``YYYY-MM-DD``) as the first (or last) second of that day in the
    region, as a dateTime with its offset; any other date or dateTime as given."""
    if len(value) != 10:
        return value
    return f"{value}T23:59:59+08:00" if end else f"{value}T00:00:00+08:00"


def _actor(actor: str | None) -> str | None:
    if actor is None or actor == "":
        return None
    kind, _, rid = actor.partition("/") if isinstance(actor, str) else ("", "", "")
    if kind not in ("Organization", "Practitioner") or not rid or "/" in rid:
        raise FhirError(
            Category.INVALID,
            "'actor' is Organization/<id>, Practitioner/<id>, or empty for any treating "
            "clinician / “actor”须为 Organization/<id>、Practitioner/<id>，或留空表示任何诊治医生",
        )
    return actor


def build_grant(
    patient_id: str, *, grant_id: str, now: int, actor: str | None = None,
    resource_types: Sequence[str] = (), labels: Sequence[str] = (),
    start: str | None = None, end: str | None = None,
    sensitive_labels: frozenset[str] = SENSITIVE_LABELS,
) -> list[dict[str, Any]]:  # fmt: skip
    """The Consent resources (one, or two with sensitive labels — see the module docstring)
    a patient's grant becomes. ``actor`` None grants any treating clinician."""
    who = _actor(actor)
    bad = sorted(set(labels) - sensitive_labels)
    if bad:
        raise FhirError(Category.INVALID, f"Unknown sensitive category: {', '.join(bad)[:100]} "
                        f"/ 未知的敏感类别：{', '.join(bad)[:100]}")  # fmt: skip
    today = datetime.fromtimestamp(now / 1_000_000, UTC).astimezone(REGION_ZONE).date()
    period = {"start": _region_day(_date(start, "start") or today.isoformat(), end=False)}
    if (e := _date(end, "end")) is not None:
        period["end"] = _region_day(e, end=True)
    provision: dict[str, Any] = {
        "type": "permit", "period": period,
        "action": [{"coding": [{"system": _ACTION, "code": "access"}]}],
    }  # fmt: skip
    if who:
        provision["actor"] = [{
            "role": {"coding": [{"system": _PARTICIPATION, "code": "IRCP"}]},
            "reference": {"reference": who},
        }]  # fmt: skip
    if resource_types:
        provision["class"] = [{"system": _RESOURCE_TYPES, "code": t}
                              for t in sorted(set(resource_types))]  # fmt: skip
    base: dict[str, Any] = {
        "resourceType": "Consent", "status": "active",
        "identifier": [{"system": GRANT_SYSTEM, "value": grant_id}],
        "scope": {"coding": [{"system": _SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": format_instant(now),
        "policyRule": {"coding": [{"system": _ACT_CODE, "code": "OPTIN"}]},
        "provision": provision,
    }  # fmt: skip
    out = [base]
    if labels:
        sensitive = {**provision, "securityLabel": [{"system": _ACT_CODE, "code": x}
                                                    for x in sorted(set(labels))]}  # fmt: skip
        out.append({**base, "provision": sensitive})
    return out


@dataclass(frozen=True, slots=True)
class ConsentSummary:
    """A Consent as the portal lists it."""

    id: str
    grant_id: str | None
    status: str
    patient_id: str | None
    actor: str | None  # None: any treating clinician
    resource_types: tuple[str, ...]
    labels: tuple[str, ...]
    kind: str  # permit | deny
    start: str | None
    end: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "grant": self.grant_id, "status": self.status,
            "patient": self.patient_id, "actor": self.actor,
            "resourceTypes": list(self.resource_types), "labels": list(self.labels),
            "type": self.kind, "start": self.start, "end": self.end,
        }  # fmt: skip


def summarize(consent: Mapping[str, Any]) -> ConsentSummary:
    prov = consent.get("provision") or {}
    actors = [a.get("reference", {}).get("reference") for a in prov.get("actor", ())
              if isinstance(a, Mapping)]  # fmt: skip
    grant = next((i.get("value") for i in consent.get("identifier", ())
                  if isinstance(i, Mapping) and i.get("system") == GRANT_SYSTEM), None)  # fmt: skip
    period = prov.get("period") or {}
    return ConsentSummary(
        str(consent.get("id")),
        grant,
        str(consent.get("status")),
        consent_patient(consent),
        ", ".join(a for a in actors if a) or None,
        tuple(c.get("code") for c in prov.get("class", ()) if isinstance(c, Mapping)),
        tuple(c.get("code") for c in prov.get("securityLabel", ()) if isinstance(c, Mapping)),
        str(prov.get("type", "deny")),
        period.get("start"),
        period.get("end"),
    )


def patient_consents(repo: Any, patient_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Every current Consent about these patients (through ``repo``: pass the principal's
    authorized view to read only what they may)."""
    ids = sorted(set(patient_ids))
    if not ids:
        return []
    refs = ",".join(f"Patient/{p}" for p in ids)
    query = parse_search("Consent", [("patient", refs), ("_count", "1000"),
                                     ("_sort", "_lastUpdated")])  # fmt: skip
    return [r.resource for r in repo.search(query).matches]


def consent_decision(
    repo: Repository, *, patient_id: str, organization_id: str | None,
    practitioner_id: str | None, resource_type: str, labels: Iterable[str], now: int,
    default: Literal["opt-in", "opt-out"], sensitive_labels: frozenset[str] = SENSITIVE_LABELS,
) -> dict[str, Any]:  # fmt: skip
    """What the patient's consents (and the region's default) decide for this access, as
    the decision endpoint answers it."""
    consents = patient_consents(repo, [patient_id])
    decision = evaluate_consents(
        consents, actor=ConsentActor(organization_id, practitioner_id),
        resource_type=resource_type, at=now, security_labels=labels, default=default,
        sensitive_labels=sensitive_labels,
    )  # fmt: skip
    return {
        "decision": "permit" if decision.permitted else "deny",
        "code": decision.code,
        "reason": {"en": decision.en, "zh": decision.zh},
        "consent": decision.consent_id,
        "default": default,
        "at": format_instant(now),
    }
