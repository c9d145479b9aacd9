"""Where a clinician may not (yet) see a patient: why, and the lawful ways in.

A clinician's read of a patient outside their reach is a 404 in the API (a hidden row is
absent, so the API never reveals that data exists). The workspace must do better for the
person at the desk: it says *why* — the policy's own reason (no care relationship, consent
denied or withdrawn, break-glass ended, a sensitive category not granted), in both
languages — and offers the two ways in the policy knows: the patient's one-time share code,
or break-the-glass with a stated reason. Only the patient id and the reason are shown,
nothing of the record.

The reason is :func:`huitong.access.policy.decide` over a :class:`PatientContext` of facts
read from the repository (registered or seen at which organizations, open referrals,
Consent resources) — the same facts the SQL restriction uses (see ``access/sql.py``).

    POST /app/patients/{id}/share-code    code=…          (CSRF) redeem a share code
    POST /app/patients/{id}/break-glass   reason=…         (CSRF) open emergency access

Both call the consent services (``WebServices.share_codes`` / ``break_glass``); until
those exist the forms say the service is not available.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from huitong.access.break_glass import MIN_REASON_CHARS
from huitong.access.decision import Reason
from huitong.access.policy import PolicySettings, decide
from huitong.access.principal import PatientContext, Principal, Referral
from huitong.fhir.dates import parse_date_range
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.store.repository import Repository
from huitong.web.display import reference_parts
from huitong.web.forms import read_form
from huitong.web.rendering import APP_PATH, View
from huitong.web.site import Site

__all__ = [
    "MIN_REASON_CHARS",
    "break_glass",
    "patient_context",
    "redeem_share_code",
    "render_restricted",
    "restricted_reason",
]

_FACT_PAGE = 1000


def _refs(repo: Repository, rtype: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    page = repo.search(parse_search(rtype, [*params, ("_count", str(_FACT_PAGE))]))
    return [m.resource for m in page.matches]


def _org_id(ref: Any) -> str | None:
    parts = reference_parts(ref.get("reference") if isinstance(ref, dict) else None)
    return parts[1] if parts and parts[0] == "Organization" else None


def _period_us(period: Any) -> tuple[int, int | None]:
    """(start, end) of a FHIR Period in µs; open ends as 0 / None."""
    if not isinstance(period, dict):
        return 0, None
    try:
        start = parse_date_range(period["start"])[0] if period.get("start") else 0
        end = parse_date_range(period["end"])[1] if period.get("end") else None
    except (ValueError, TypeError):  # stored data was validated; never fail an explanation
        return 0, None
    return start, end


def patient_context(repo: Repository, patient: dict[str, Any]) -> PatientContext:
    """The facts about one patient the policy decides on, read from ``repo`` (the plain
    repository: these facts explain a refusal, they are never shown)."""
    pid = patient["id"]
    orgs = {o for o in [_org_id(patient.get("managingOrganization"))] if o}
    for encounter in _refs(repo, "Encounter", [("patient", pid)]):
        org = _org_id(encounter.get("serviceProvider"))
        if org:
            orgs.add(org)
    referrals = []
    for request in _refs(repo, "ServiceRequest", [("patient", pid), ("status", "active")]):
        for performer in request.get("performer", []):
            parts = reference_parts(performer.get("reference"))
            if not parts:
                continue
            start, end = _period_us(request.get("occurrencePeriod"))
            referrals.append(Referral(
                request["id"], practitioner_id=parts[1] if parts[0] == "Practitioner" else None,
                organization_id=parts[1] if parts[0] == "Organization" else None,
                start=start, end=end))  # fmt: skip
    consents = tuple(_refs(repo, "Consent", [("patient", pid)]))
    return PatientContext(pid, frozenset(orgs), tuple(referrals), consents)


def restricted_reason(repo: Repository, principal: Principal, patient_id: str, now: int,
                      settings: PolicySettings | None = None) -> Reason | None:  # fmt: skip
    """Why ``principal`` may not read Patient ``patient_id``; None when the patient does not
    exist (or was deleted) or the policy would in fact allow it."""
    try:
        stored = repo.read("Patient", patient_id)
    except FhirError as err:
        if err.category in (Category.NOT_FOUND, Category.GONE):
            return None
        raise
    decision = decide(principal, "read", "Patient", patient_context(repo, stored.resource),
                      now=now, settings=settings or PolicySettings())  # fmt: skip
    return None if decision else decision.reason


def render_restricted(
    site: Site, view: View, patient_id: str, reason: Reason, *, status: int = 403,
    problem: str = "", done: str = "",
) -> Response:
    return site.pages.render(
        view, "patient_restricted.html", status, patient_id=patient_id,
        reason=reason.en if view.lang == "en" else reason.zh, reason_code=reason.code,
        problem=problem, done=done, min_reason=MIN_REASON_CHARS,
        glass_hours=getattr(site.services.break_glass, "hours", 4),
        share_available=site.services.share_codes is not None,
        glass_available=site.services.break_glass is not None, section="clinician",
    )


async def _reason_or_404(site: Site, view: View, patient_id: str) -> Reason:
    who = view.who
    if who is None:  # authentication off: nothing is restricted
        raise FhirError(Category.NOT_FOUND, view.t("error.no_such_resource"))
    reason = await site.call(restricted_reason, site.services.repo, who.principal, patient_id,
                             site.services.clock(), site.services.policy)  # fmt: skip
    if reason is None:
        raise FhirError(Category.NOT_FOUND, view.t("error.no_such_resource"))
    return reason


def _opened(patient_id: str) -> Response:
    return RedirectResponse(f"{APP_PATH}/patients/{patient_id}", 303)


async def redeem_share_code(site: Site, request: Request, view: View) -> Response:
    patient_id = request.path_params["patient_id"]
    fields = await read_form(request, view, site.services.secret)
    reason = await _reason_or_404(site, view, patient_id)
    service = site.services.share_codes
    code = "".join(fields.get("code", "").split()).upper()[:64]
    if service is None:
        return render_restricted(site, view, patient_id, reason, status=503,
                                 problem=view.t("access.share.unavailable"))
    if not code:
        return render_restricted(site, view, patient_id, reason, status=400,
                                 problem=view.t("access.share.empty"))
    try:
        grant = await site.call(service.redeem, view.who.principal, code)
    except FhirError as err:
        if err.category in (Category.INTERNAL, Category.UNAVAILABLE):
            raise
        return render_restricted(site, view, patient_id, reason, status=400,
                                 problem=view.pick(err.message))
    # the code names its patient: normally this one, else the one the patient shared
    return _opened(grant.patient_id)


async def break_glass(site: Site, request: Request, view: View) -> Response:
    patient_id = request.path_params["patient_id"]
    fields = await read_form(request, view, site.services.secret)
    reason = await _reason_or_404(site, view, patient_id)
    service = site.services.break_glass
    why = " ".join(fields.get("reason", "").split())[:500]
    if service is None:
        return render_restricted(site, view, patient_id, reason, status=503,
                                 problem=view.t("access.glass.unavailable"))
    if len(why) < MIN_REASON_CHARS:
        return render_restricted(site, view, patient_id, reason, status=400,
                                 problem=view.t("access.glass.too_short", n=MIN_REASON_CHARS))
    try:
        await site.call(service.open, view.who.principal, patient_id, why)
    except FhirError as err:
        if err.category in (Category.INTERNAL, Category.UNAVAILABLE):
            raise
        return render_restricted(site, view, patient_id, reason, status=400,
                                 problem=view.pick(err.message))
    return _opened(patient_id)
