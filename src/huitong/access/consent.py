"""Evaluating FHIR R4 Consent resources for one access — https://hl7.org/fhir/R4/consent.html

Only ``active`` consents whose ``scope`` is ``patient-privacy`` take part (a revoked consent
is ``inactive``: it stops counting on the very next evaluation, since nothing is cached here).
Within a consent the outermost ``provision`` is the base rule and nested provisions are
exceptions to it (https://hl7.org/fhir/R4/consent.html#provision), recursively; among
provisions that apply at the same level, and among consents, ``deny`` overrides ``permit``.

A provision applies to an access when all its conditions hold:

- ``period`` contains the time of access;
- ``actor``: a reference to the requester's Organization or Practitioner; a provision with no
  actor applies to any treating clinician;
- ``class``: a resource-type coding (``http://hl7.org/fhir/resource-types``) naming the type;
- ``securityLabel``: the resource carries one of the labels;
- ``action``: includes ``access`` or ``use`` (http://terminology.hl7.org/CodeSystem/consentaction).

Conditions Huitong does not evaluate (``purpose``, ``code``, ``data``, ``dataPeriod``) make a
``permit`` not apply and a ``deny`` apply, so an unknown condition never widens access.

Sensitive categories (mental health, HIV, reproductive health...) are hidden unless granted
explicitly: a permit opens a resource carrying a sensitive label only if a provision on the
path to that permit lists the label in ``securityLabel``. With no applicable consent the
region's default decides: ``opt-out`` permits non-sensitive data, ``opt-in`` does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from huitong.fhir.dates import parse_date_range

__all__ = [
    "SENSITIVE_LABELS",
    "ConsentActor",
    "ConsentDecision",
    "evaluate_consents",
]

# v3 ActCode sensitivity codes (http://terminology.hl7.org/CodeSystem/v3-ActCode) hidden
# unless a consent grants them explicitly.
SENSITIVE_LABELS = frozenset({"PSY", "PSYTHPN", "MH", "HIV", "STD", "ETH", "SDV", "SEX", "SUD"})

_RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
_ACCESS_ACTIONS = {"access", "use"}
_UNEVALUATED = ("purpose", "code", "data", "dataPeriod")


@dataclass(frozen=True, slots=True)
class ConsentActor:
    """Who asks: the Organization and Practitioner they act for (FHIR ids)."""

    organization_id: str | None = None
    practitioner_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """``permitted`` with the deciding ``consent_id`` (None when the regional default
    decided), a stable ``code`` and the reason in English and Chinese."""

    permitted: bool
    code: str
    en: str
    zh: str
    consent_id: str | None = None

    def __bool__(self) -> bool:
        return self.permitted


@dataclass(frozen=True, slots=True)
class _Access:
    actor: ConsentActor
    resource_type: str
    labels: frozenset[str]
    at: int


def _codes(codings: Iterable[Mapping[str, Any]] | None) -> set[str]:
    return {c["code"] for c in codings or () if isinstance(c, Mapping) and "code" in c}


def _in_period(period: Mapping[str, Any] | None, at: int) -> bool:
    if not period:
        return True
    try:
        if "start" in period and at < parse_date_range(period["start"])[0]:
            return False
        if "end" in period and at > parse_date_range(period["end"])[1]:
            return False
    except ValueError:
        return False  # an unreadable period grants nothing
    return True


def _failed_condition(prov: Mapping[str, Any], access: _Access, kind: str) -> str | None:
    """The first condition of ``prov`` that does not hold for ``access``, or None."""
    if not _in_period(prov.get("period"), access.at):
        return "period"
    actors = prov.get("actor")
    if actors:
        wanted = set()
        if access.actor.organization_id:
            wanted.add(f"Organization/{access.actor.organization_id}")
        if access.actor.practitioner_id:
            wanted.add(f"Practitioner/{access.actor.practitioner_id}")
        refs = {a.get("reference", {}).get("reference") for a in actors if isinstance(a, Mapping)}
        if not refs & wanted:
            return "actor"
    classes = prov.get("class")
    if classes:
        types = {
            c.get("code")
            for c in classes
            if isinstance(c, Mapping) and c.get("system", _RESOURCE_TYPES) == _RESOURCE_TYPES
        }
        if access.resource_type not in types:
            return "class"
    labels = prov.get("securityLabel")
    if labels and not _codes(labels) & access.labels:
        return "label"
    actions = prov.get("action")
    if actions:
        codes = {c for a in actions if isinstance(a, Mapping) for c in _codes(a.get("coding"))}
        if not codes & _ACCESS_ACTIONS:
            return "action"
    if kind == "permit" and any(prov.get(k) for k in _UNEVALUATED):
        return "unevaluated"
    return None


def _evaluate(
    prov: Mapping[str, Any], access: _Access, parent: str, labels: frozenset[str]
) -> tuple[str, frozenset[str]] | None:
    """(``permit``/``deny``, labels granted explicitly on the path) or None if ``prov`` does
    not apply. Exceptions (nested provisions) override their parent; deny overrides permit."""
    kind = prov.get("type", parent)
    if _failed_condition(prov, access, kind) is not None:
        return None
    labels = labels | frozenset(_codes(prov.get("securityLabel")))
    results = [
        r for child in prov.get("provision", ()) if (r := _evaluate(child, access, kind, labels))
    ]
    for r in results:
        if r[0] == "deny":
            return r
    for r in results:
        if r[0] == "permit":
            return r
    return kind, labels


def _is_privacy(consent: Mapping[str, Any]) -> bool:
    scope = consent.get("scope") or {}
    return "patient-privacy" in _codes(scope.get("coding"))


def evaluate_consents(
    consents: Sequence[Mapping[str, Any]],
    *,
    actor: ConsentActor,
    resource_type: str,
    at: int,
    security_labels: Iterable[str] = (),
    default: Literal["opt-in", "opt-out"] = "opt-in",
    sensitive_labels: frozenset[str] = SENSITIVE_LABELS,
) -> ConsentDecision:
    """May ``actor`` access a ``resource_type`` resource carrying ``security_labels`` of the
    patient whose ``consents`` these are, at ``at`` (microseconds, UTC)?"""
    access = _Access(actor, resource_type, frozenset(security_labels), at)
    sensitive = access.labels & sensitive_labels
    permits: list[tuple[str, frozenset[str]]] = []
    expired: str | None = None
    lapsed: tuple[str, str] | None = None  # (consent id, status) of an inactive consent
    for consent in consents:
        if consent.get("resourceType") != "Consent" or not _is_privacy(consent):
            continue
        cid = str(consent.get("id", ""))
        root = consent.get("provision")
        if not isinstance(root, Mapping):
            continue
        status = consent.get("status")
        if status != "active":
            applies = _evaluate(root, access, "deny", frozenset()) is not None
            if lapsed is None and status in ("inactive", "rejected") and applies:
                lapsed = (cid, status)
            continue
        result = _evaluate(root, access, "deny", frozenset())
        if result is None:
            if expired is None and _failed_condition(root, access, "permit") == "period":
                expired = cid
            continue
        kind, granted = result
        if kind == "deny":
            return ConsentDecision(
                False, "consent-deny",
                f"Consent {cid} denies this access.",
                f"同意书 {cid} 拒绝此访问。",
                cid,
            )  # fmt: skip
        permits.append((cid, granted))
    for cid, granted in permits:
        if sensitive <= granted:
            return ConsentDecision(
                True, "consent-permit",
                f"Consent {cid} permits this access.",
                f"同意书 {cid} 允许此访问。",
                cid,
            )  # fmt: skip
    if permits:
        labels = ", ".join(sorted(sensitive))
        return ConsentDecision(
            False, "sensitive-not-granted",
            f"Consent {permits[0][0]} does not explicitly grant the sensitive category "
            f"({labels}) of this data.",
            f"同意书 {permits[0][0]} 未明确授权此数据的敏感类别（{labels}）。",
            permits[0][0],
        )  # fmt: skip
    if lapsed is not None:
        cid, status = lapsed
        word_en, word_zh = ("revoked", "已撤销") if status == "inactive" else ("rejected", "被拒绝")
        return ConsentDecision(
            False, f"consent-{word_en}",
            f"Consent {cid} would have applied but was {word_en}.",
            f"同意书 {cid} 本可适用，但{word_zh}。",
            cid,
        )  # fmt: skip
    if expired is not None:
        return ConsentDecision(
            False, "consent-expired",
            f"Consent {expired} is outside its period of validity.",
            f"同意书 {expired} 不在有效期内。",
            expired,
        )  # fmt: skip
    if default == "opt-out" and not sensitive:
        return ConsentDecision(
            True, "opt-out-default",
            "No consent applies; the region shares by default (opt-out) and the patient has "
            "not opted out.",
            "无适用的同意书；本区域默认共享（选择退出制），患者未选择退出。",
        )  # fmt: skip
    return ConsentDecision(
        False, "no-consent",
        "No active consent of the patient permits this access.",
        "患者没有允许此访问的有效同意书。",
    )  # fmt: skip
