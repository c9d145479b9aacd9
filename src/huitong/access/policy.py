"""Role policies intersected with SMART scopes: ``decide`` answers one access question.

The rules (issue 5, "Authorization"):

- clinicians see the patients of their own organization (registered or seen there), patients
  referred to them, and patients whose consent permits them; break-the-glass opens one
  patient, time-boxed, with a stated reason; sensitive categories stay hidden unless a
  consent grants them explicitly (break-glass excepted: it is an emergency);
- patients see their own record (every linked Patient record), their own access log, and
  manage their own Consent resources;
- public-health and research roles get no identified clinical data;
- platform administrators configure (non-clinical resources) but cannot read clinical data;
- auditors read the audit log; nobody writes it through the API;
- system clients act only within ``system/`` scopes;
- directory and terminology resources (not in the Patient compartment) are readable by every
  role; only administrators change them.

A resource type is *clinical* when it is ``Patient`` or belongs to the Patient compartment
(https://hl7.org/fhir/R4/compartmentdefinition-patient.html); ``AuditEvent`` is the audit log.

``decide`` is pure. Without a patient context (a search) an allowed decision carries the
constraint the store adds to the query. With a :class:`PatientContext` (facts the store
loaded about one patient) it answers definitely, with the precise reason — consent id,
referral, break-glass or share code — that the audit log records. A denied decision is made
before any data is touched, so a 403 never reveals whether data exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

from huitong.access.consent import SENSITIVE_LABELS, ConsentActor, evaluate_consents
from huitong.access.constraints import (
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
    all_of,
    any_of,
)
from huitong.access.decision import Decision, Reason
from huitong.access.principal import PatientContext, Principal, Role
from huitong.access.scopes import INTERACTION_PERMISSION
from huitong.fhir.dates import format_instant
from huitong.fhir.definitions import compartments

__all__ = ["READ_INTERACTIONS", "WRITE_INTERACTIONS", "PolicySettings", "decide", "is_clinical"]

WRITE_INTERACTIONS = frozenset({"create", "update", "patch", "delete"})
READ_INTERACTIONS = frozenset(INTERACTION_PERMISSION) - WRITE_INTERACTIONS
AUDIT_TYPE = "AuditEvent"


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """Regional settings: the consent default (``opt-in``: no sharing without consent;
    ``opt-out``: sharing unless the patient objects) and the sensitive labels."""

    consent_default: Literal["opt-in", "opt-out"] = "opt-in"
    sensitive_labels: frozenset[str] = SENSITIVE_LABELS


@cache
def is_clinical(resource_type: str) -> bool:
    """``Patient`` or a member of the Patient compartment (the audit log aside)."""
    if resource_type == AUDIT_TYPE:
        return False
    return resource_type == "Patient" or bool(compartments()["Patient"].get(resource_type))


def _deny(code: str, en: str, zh: str, ref: str | None = None) -> Decision:
    return Decision(False, Reason("denied", code, en, zh, ref=ref))


def _allow(
    constraint: Constraint, kind: str, code: str, en: str, zh: str, **extra: object
) -> Decision:
    return Decision(True, Reason(kind, code, en, zh, **extra), constraint)  # type: ignore[arg-type]


_DIRECTORY_READ = (
    "directory-read",
    "Directory and terminology data are readable by every signed-in role.",
    "目录和术语数据对所有已登录角色可读。",
)
_CONFIG_BY_ADMIN = (
    "configuration-by-admin",
    "Only platform administrators change directory and configuration data.",
    "只有平台管理员可以修改目录和配置数据。",
)
_AUDIT_APPEND_ONLY = (
    "audit-log-append-only",
    "The audit log is written by the platform only; it cannot be changed through the API.",
    "审计日志只由平台写入，不能通过接口修改。",
)
_AUDITOR_ONLY = (
    "auditor-audit-only",
    "Auditors read the audit log only.",
    "审计员只能读取审计日志。",
)
_AUDIT_AUDITORS = (
    "audit-log-auditors-only",
    "Only auditors read the audit log (and patients, the entries about themselves).",
    "只有审计员可以读取审计日志（患者可查看与本人有关的记录）。",
)


def decide(
    principal: Principal,
    action: str,
    resource_type: str,
    patient_context: PatientContext | str | None = None,
    *,
    now: int,
    settings: PolicySettings = PolicySettings(),
) -> Decision:
    """May ``principal`` perform ``action`` (a FHIR interaction code, see
    :data:`~huitong.access.scopes.INTERACTION_PERMISSION`) on ``resource_type``?

    ``patient_context`` is None (no single patient: a search), a patient id (the request is
    about that patient; facts unknown: the constraint is narrowed to them), or a
    :class:`PatientContext` (facts loaded: a definite answer). ``now`` is the injected
    clock's time (microseconds), used for break-glass windows, share codes, consent periods
    and referrals. ``ValueError`` for an unknown action.
    """
    if action not in INTERACTION_PERMISSION:
        raise ValueError(f"unknown interaction {action!r}")
    scopes = principal.scopes
    if scopes is not None and not scopes.allows(action, resource_type):
        return _deny(
            "scope-not-granted",
            f"The access token's scopes do not permit {action} on {resource_type}.",
            f"访问令牌的权限范围不允许对 {resource_type} 执行 {action}。",
        )
    if principal.role is Role.SYSTEM and scopes is None:
        return _deny(
            "system-needs-scopes",
            "A system client acts only within granted system/ scopes.",
            "系统客户端只能在授予的 system/ 权限范围内操作。",
        )
    decision = _role_decision(principal, action, resource_type, patient_context, now, settings)
    if not decision or scopes is None:
        return decision
    return _intersect_scopes(principal, action, resource_type, patient_context, decision)


def _intersect_scopes(
    principal: Principal,
    action: str,
    resource_type: str,
    patient_context: PatientContext | str | None,
    decision: Decision,
) -> Decision:
    assert principal.scopes is not None and decision.constraint is not None
    grant = principal.scopes.grant(action, resource_type)
    pid = (
        patient_context.patient_id
        if isinstance(patient_context, PatientContext)
        else (patient_context)
    )
    system = principal.role is Role.SYSTEM
    alternatives: list[Constraint] = []
    for alt in grant.alternatives:
        restriction: Constraint = (
            MatchesSearch(alt.restriction) if alt.restriction else (Unrestricted())
        )
        # system/ scopes serve backend clients only, user/ and patient/ scopes users only
        if alt.context == ("system" if system else "user"):
            alternatives.append(all_of(decision.constraint, restriction))
        launch = principal.launch_patient
        if alt.context == "patient" and not system and launch and pid in (None, launch):
            only = PatientsIn(frozenset({launch}))
            alternatives.append(all_of(only, decision.constraint, restriction))
    if not alternatives:
        return _deny(
            "scope-context-unusable",
            "The granted scopes do not apply here (patient/ scopes need this launch patient; "
            "system/ scopes are for backend clients only).",
            "已授予的权限范围在此不适用（patient/ 权限需对应启动时的患者；"
            "system/ 权限仅供后台客户端）。",
        )
    reason = decision.reason
    if system:
        scopes = " ".join(grant.scopes)
        reason = Reason(
            "scope", "system-scope",
            f"System client granted {scopes}.", f"系统客户端已获授权：{scopes}。", ref=scopes,
        )  # fmt: skip
    return Decision(True, reason, any_of(*alternatives))


def _role_decision(
    p: Principal,
    action: str,
    rtype: str,
    ctx: PatientContext | str | None,
    now: int,
    settings: PolicySettings,
) -> Decision:
    write = action in WRITE_INTERACTIONS
    if rtype == AUDIT_TYPE:
        return _audit_decision(p, write, ctx)
    if not is_clinical(rtype):
        if p.role in (Role.PLATFORM_ADMIN, Role.SYSTEM):
            return _allow(
                Unrestricted(), "role", "platform-admin-configuration",
                "Platform administrators configure directory and configuration data.",
                "平台管理员配置目录和配置数据。",
            )  # fmt: skip
        if write:
            return _deny(*_CONFIG_BY_ADMIN)
        if p.role is Role.AUDITOR:
            return _deny(*_AUDITOR_ONLY)
        return _allow(Unrestricted(), "role", *_DIRECTORY_READ)
    if p.role is Role.SYSTEM:
        return _allow(Unrestricted(), "scope", "system-scope", "System client.", "系统客户端。")
    if p.role is Role.PLATFORM_ADMIN:
        return _deny(
            "platform-admin-no-clinical",
            "Platform administrators configure the platform but cannot read or change "
            "clinical data.",
            "平台管理员负责配置平台，不能读取或修改临床数据。",
        )
    if p.role is Role.AUDITOR:
        return _deny(*_AUDITOR_ONLY)
    if p.role in (Role.PUBLIC_HEALTH, Role.RESEARCHER):
        return _deny(
            "no-identified-clinical-reads",
            "Public-health and research roles get no identified clinical data; use the "
            "de-identified services.",
            "公共卫生和科研角色不能获取可识别身份的临床数据；请使用去标识化服务。",
        )
    if p.role is Role.PATIENT:
        return _patient_decision(p, action, rtype, ctx)
    return _clinician_decision(p, action, rtype, ctx, now, settings)


def _audit_decision(p: Principal, write: bool, ctx: PatientContext | str | None) -> Decision:
    if write:
        return _deny(*_AUDIT_APPEND_ONLY)
    if p.role is Role.AUDITOR or (p.role is Role.SYSTEM and p.scopes is not None):
        return _allow(
            Unrestricted(), "role", "auditor-audit-log",
            "Auditors read the whole audit log.", "审计员可读取全部审计日志。",
        )  # fmt: skip
    if p.role is Role.PATIENT and p.patient_ids:
        pid = ctx.patient_id if isinstance(ctx, PatientContext) else ctx
        if pid is not None and pid not in p.patient_ids:
            return _deny(*_OTHER_RECORD)
        return _allow(
            PatientsIn(p.patient_ids), "role", "patient-own-access-log",
            "Patients see who accessed their own record.", "患者可查看谁访问了本人的记录。",
        )  # fmt: skip
    return _deny(*_AUDIT_AUDITORS)


_OTHER_RECORD = (
    "patient-other-record",
    "Patients may see only their own record.",
    "患者只能查看本人的记录。",
)


def _patient_decision(
    p: Principal, action: str, rtype: str, ctx: PatientContext | str | None
) -> Decision:
    if not p.patient_ids:
        return _deny(
            "patient-not-linked",
            "This account is not linked to a patient record.",
            "此账户未关联患者记录。",
        )
    pid = ctx.patient_id if isinstance(ctx, PatientContext) else ctx
    if pid is not None and pid not in p.patient_ids:
        return _deny(*_OTHER_RECORD)
    own = PatientsIn(p.patient_ids if pid is None else frozenset({pid}))
    if action in WRITE_INTERACTIONS:
        if rtype != "Consent":
            return _deny(
                "patient-read-only",
                "Patients read their record and manage their consents; they do not change "
                "clinical data.",
                "患者可以查看本人记录并管理同意书，但不能修改临床数据。",
            )
        return _allow(
            own, "role", "patient-manages-consent",
            "Patients manage their own consents.", "患者管理本人的同意书。",
        )  # fmt: skip
    return _allow(
        own, "role", "patient-own-record",
        "Patients see their own record, including every linked record.",
        "患者可查看本人的记录，包括所有关联的记录。",
    )  # fmt: skip


def _clinician_decision(
    p: Principal,
    action: str,
    rtype: str,
    ctx: PatientContext | str | None,
    now: int,
    settings: PolicySettings,
) -> Decision:
    write = action in WRITE_INTERACTIONS
    if write and rtype == "Consent":
        return _deny(
            "consent-managed-by-patient",
            "Consents are managed by the patient.",
            "同意书由患者本人管理。",
        )
    if isinstance(ctx, PatientContext):
        return _clinician_for_patient(p, write, rtype, ctx, now, settings)
    org, pract = p.organization_id, p.practitioner_id
    care: list[Constraint] = []
    if org:
        care.append(OrganizationPatients(org))
    if org or pract:
        care.append(ReferredPatients(pract, org, now))
    glass: list[Constraint] = [
        BreakGlassPatient(b.patient_id, b.until) for b in p.break_glass if b.active(now)
    ]
    if write:
        parts = [*care, *glass]
    else:
        if org or pract:
            default_permit = settings.consent_default == "opt-out"
            care.append(ConsentedPatients(org, pract, rtype, now, default_permit))
        hide = HideLabels(settings.sensitive_labels, org, pract, now)
        shared: list[Constraint] = [
            all_of(
                SharedPatient(g.patient_id, g.code_id, g.until),
                HideLabels(settings.sensitive_labels - g.labels, org, pract, now),
            )
            for g in p.share_grants
            if g.covers(rtype, now)
        ]
        parts = [all_of(any_of(*care), hide)] if care else []
        parts += [*glass, *shared]
    if not parts:
        return _deny(*_NO_RELATIONSHIP)
    constraint = any_of(*parts)
    if isinstance(ctx, str):
        constraint = all_of(PatientsIn(frozenset({ctx})), constraint)
    return _allow(
        constraint, "role", "clinician-care-relationship",
        "Clinicians see patients of their organization, referred to them, who consented to "
        "share with them, or opened by break-glass.",
        "临床医生可查看本机构的患者、转诊给其的患者、同意与其共享的患者，以及经紧急访问开启的患者。",
    )  # fmt: skip


_NO_RELATIONSHIP = (
    "clinician-no-relationship",
    "The patient is not registered or seen at your organization, not referred to you, and has "
    "not consented to share with you.",
    "该患者未在您的机构登记或就诊，未转诊给您，也未同意与您共享。",
)


def _clinician_for_patient(
    p: Principal,
    write: bool,
    rtype: str,
    ctx: PatientContext,
    now: int,
    settings: PolicySettings,
) -> Decision:
    pid = ctx.patient_id
    only = PatientsIn(frozenset({pid}))
    sensitive = ctx.security_labels & settings.sensitive_labels
    own_org = p.organization_id is not None and p.organization_id in ctx.organizations
    referral = next(
        (r for r in ctx.referrals if r.open_for(p.practitioner_id, p.organization_id, now)), None
    )
    if (own_org or referral) and (write or not sensitive):
        if own_org:
            return _allow(
                only, "role", "clinician-own-organization",
                "The patient is registered or was seen at your organization.",
                "该患者在您的机构登记或就诊过。",
            )  # fmt: skip
        assert referral is not None
        return _allow(
            only, "referral", "clinician-referral",
            f"The patient was referred to you (referral {referral.id}).",
            f"该患者已转诊给您（转诊 {referral.id}）。",
            ref=referral.id,
        )  # fmt: skip
    consent = None
    if not write:
        consent = evaluate_consents(
            ctx.consents,
            actor=ConsentActor(p.organization_id, p.practitioner_id),
            resource_type=rtype,
            at=now,
            security_labels=ctx.security_labels,
            default=settings.consent_default,
            sensitive_labels=settings.sensitive_labels,
        )
        if consent.permitted:
            return _allow(only, "consent", consent.code, consent.en, consent.zh,
                          ref=consent.consent_id)  # fmt: skip
        grant = next(
            (
                g for g in p.share_grants
                if g.patient_id == pid and g.covers(rtype, now) and sensitive <= g.labels
            ),
            None,
        )  # fmt: skip
        if grant is not None:
            return _allow(
                only, "share-code", "share-code",
                f"The patient shared their record with a one-time code ({grant.code_id}).",
                f"患者通过一次性共享码（{grant.code_id}）共享了记录。",
                ref=grant.code_id, until=grant.until,
            )  # fmt: skip
    glass = next((b for b in p.break_glass if b.patient_id == pid and b.active(now)), None)
    if glass is not None:
        return _allow(
            only, "break-glass", "break-glass",
            f"Emergency (break-glass) access until {format_instant(glass.until)}: "
            f"{glass.justification}",
            f"紧急访问（破窗）有效至 {format_instant(glass.until)}：{glass.justification}",
            justification=glass.justification, until=glass.until,
        )  # fmt: skip
    ended = [b for b in p.break_glass if b.patient_id == pid and now >= b.until]
    if ended:
        until = format_instant(max(b.until for b in ended))
        return _deny(
            "break-glass-expired",
            f"Your break-glass access to this patient ended at {until}.",
            f"您对该患者的紧急访问已于 {until} 结束。",
        )
    if (own_org or referral) and sensitive:
        labels = ", ".join(sorted(sensitive))
        return _deny(
            "sensitive-not-granted",
            f"This data is in a sensitive category ({labels}) the patient has not granted "
            "to you explicitly.",
            f"此数据属于敏感类别（{labels}），患者未明确授权给您。",
            ref=consent.consent_id if consent else None,
        )
    if consent is not None and consent.code != "no-consent":
        return _deny(consent.code, consent.en, consent.zh, ref=consent.consent_id)
    return _deny(*_NO_RELATIONSHIP)
