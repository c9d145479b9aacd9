"""The patient portal: a resident signed in to their own record (role ``patient``).

    GET  /app/portal                          my record (the overview, in plain language)
    GET  /app/portal/consents                 my consents, and the form to grant access
    POST /app/portal/consents                 grant (CSRF) → Consent resource(s)
    POST /app/portal/consents/{id}/revoke     revoke a grant (CSRF; status inactive)
    GET  /app/portal/share                    my share codes, and the form for a new one
    POST /app/portal/share                    issue a one-time code (CSRF): shown once,
                                              large, with a QR image drawn as SVG
    POST /app/portal/share/{id}/withdraw      withdraw a code or end its access (CSRF)
    GET  /app/portal/access                   who accessed my record (the audit log)
    GET  /app/portal/access/{index}/proof     one entry's inclusion proof (JSON)

Every page calls the services the API calls (``/api/consents``, ``/api/share-codes``,
``/api/audit/entries``): Consents are built by :func:`huitong.access.consents.build_grant`
and written through the patient's :class:`AuthorizedRepository`, with the request's
principal in :data:`~huitong.access.consents.CURRENT_PRINCIPAL` so the consent guard checks
they are the patient's own; share codes go through ``ShareCodeService``; the access list
through ``AuditService.accesses_of``, each entry's inclusion proof checked here, on the
server, against the latest signed checkpoint (:mod:`huitong.web.audit_proofs`). Writes run
through the audit recorder like the FHIR API's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from huitong.access.consents import (
    CURRENT_PRINCIPAL,
    ConsentSummary,
    build_grant,
    patient_consents,
    summarize,
)
from huitong.access.principal import Principal
from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.store.repository import Repository
from huitong.web.audit_proofs import AccessRow, access_rows, proof_document
from huitong.web.clinician import Person, is_golden, load_person, record_charts
from huitong.web.forms import read_form, read_form_multi
from huitong.web.patient_record import build_record
from huitong.web.qr import qr_svg
from huitong.web.rendering import APP_PATH, View
from huitong.web.site import Handler, Site

__all__ = [
    "CATEGORIES",
    "SENSITIVE",
    "access_page",
    "consents_page",
    "grant_consent",
    "issue_share_code",
    "needs_sign_in",
    "parse_grant",
    "parse_share",
    "proof_json",
    "record_page",
    "revoke_consent",
    "share_page",
    "withdraw_share_code",
]

PORTAL = f"{APP_PATH}/portal"

# Data categories a patient chooses from → the resource types they stand for. Consents
# decide per resource type, so a category is a group of types; laboratory results and vital
# signs are both Observations, which the page says. The patient's demographics and visits
# always go with a choice, or the doctor could not tell whose record it is.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "labs": ("DiagnosticReport", "Observation", "Specimen"),
    "medications": ("MedicationRequest", "MedicationStatement", "MedicationAdministration",
                    "MedicationDispense", "Immunization"),
    "conditions": ("Condition", "AllergyIntolerance", "Procedure"),
    "vitals": ("Observation",),
    "imaging": ("ImagingStudy", "Media"),
    "documents": ("DocumentReference", "Composition"),
}
ALWAYS_SHARED = ("Patient", "Encounter")
# Sensitive categories (v3 ActCode confidentiality labels) → the labels granted. Hidden
# unless ticked explicitly: nothing here is ever on by default.
SENSITIVE: dict[str, tuple[str, ...]] = {
    "mental": ("MH", "PSY", "PSYTHPN"),
    "hiv": ("HIV",),
    "reproductive": ("SEX", "STD"),
}
# The choices the share-code form offers (validity of the code, length of the access).
SHARE_VALID_MINUTES = (30, 60, 24 * 60, 7 * 24 * 60)
SHARE_ACCESS_HOURS = (1, 4, 24, 72)
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ACCESS_PAGE = 50


def _invalid(view: View, key: str, **values: object) -> FhirError:
    return FhirError(Category.INVALID, view.t(key, **values))


def _principal(view: View) -> Principal:
    who = view.who
    if who is None:  # Audience.PATIENT guarantees a patient; without sign-in there is none
        raise FhirError(Category.FORBIDDEN, view.t("portal.sign_in_as_patient"))
    principal: Principal = who.principal
    return principal


# -- my record ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwnRecord:
    person: Person
    resources: list[dict[str, Any]]
    sources: list[str]


def load_own_record(repo: Repository, patient_ids: frozenset[str]) -> OwnRecord:
    """Everything about the signed-in person across their linked records: the golden
    record (with its sources) when the account is linked to one, and every other record of
    theirs besides, each resource once."""
    people = [load_person(repo, pid) for pid in sorted(patient_ids)]
    main = next((p for p in people if is_golden(p.patient.resource)), people[0])
    seen: set[str] = set()
    resources: list[dict[str, Any]] = []
    sources: list[str] = []
    for person in [main, *[p for p in people if p is not main]]:
        if person is not main:
            sources.append(person.patient.id)
        for resource in person.resources:
            ref = f"{resource.get('resourceType')}/{resource.get('id')}"
            if ref not in seen:
                seen.add(ref)
                resources.append(resource)
    return OwnRecord(main, resources, sorted({*main.sources, *sources}))


async def record_page(site: Site, request: Request, view: View) -> Response:
    principal = _principal(view)
    today = site.today()
    repo = site.repo(view)
    first = min(principal.patient_ids)

    def prepare() -> tuple[OwnRecord, Any, Any]:
        own = load_own_record(repo, principal.patient_ids)
        record = build_record(own.person.patient.resource, own.resources, today, view.lang,
                              linked=set(own.sources))  # fmt: skip
        return own, record, record_charts(record, view)

    own, record, charts = await site.audited(request, view, "read", "Patient", first, prepare,
                                             [("page", "portal-record")])  # fmt: skip
    return site.pages.render(
        view, "portal_record.html", record=record, charts=charts, person=own.person,
        linked=own.sources, bp_rows=100, sections="record.section.", section="portal",
        subsection="record",
    )  # fmt: skip


# -- my consents -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """A validated grant form."""

    actor: str | None  # Organization/<id>, or None: any treating clinician
    categories: tuple[str, ...]  # empty: everything that is not sensitive
    sensitive: tuple[str, ...]
    start: str
    end: str | None

    @property
    def resource_types(self) -> tuple[str, ...]:
        if not self.categories:
            return ()
        types = {t for c in self.categories for t in CATEGORIES[c]}
        return tuple(sorted(types | set(ALWAYS_SHARED)))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted({lb for s in self.sensitive for lb in SENSITIVE[s]}))


def _ticked(fields: dict[str, list[str]], name: str, allowed: dict[str, Any], view: View,
            key: str) -> tuple[str, ...]:  # fmt: skip
    values = fields.get(name, [])
    bad = [v for v in values if v not in allowed]
    if bad:
        raise _invalid(view, key)
    return tuple(sorted(set(values)))


def _day(value: str, view: View, key: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    if not _DATE.fullmatch(value):
        raise _invalid(view, key)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _invalid(view, key) from None


def parse_grant(fields: dict[str, list[str]], view: View, today: date,
                organizations: set[str]) -> GrantRequest:  # fmt: skip
    """The grant form's fields, checked: who (any treating clinician, or one organization
    of the directory), which categories (``all`` or some), sensitive categories (only those
    ticked), a period that starts today or later and does not end before it starts.
    INVALID with a bilingual reason otherwise."""

    def one(name: str) -> str:
        return (fields.get(name) or [""])[0]

    who = one("who")
    if who == "any":
        actor = None
    elif who == "organization":
        org = one("organization")
        if not org or org not in organizations:
            raise _invalid(view, "portal.consent.error.organization")
        actor = f"Organization/{org}"
    else:
        raise _invalid(view, "portal.consent.error.who")
    scope = one("scope")
    if scope == "all":
        categories: tuple[str, ...] = ()
    elif scope == "some":
        categories = _ticked(fields, "category", CATEGORIES, view, "portal.consent.error.category")
        if not categories:
            raise _invalid(view, "portal.consent.error.no_category")
    else:
        raise _invalid(view, "portal.consent.error.scope")
    sensitive = _ticked(fields, "sensitive", SENSITIVE, view, "portal.consent.error.sensitive")
    start = _day(one("start"), view, "portal.consent.error.date") or today
    end = _day(one("end"), view, "portal.consent.error.date")
    if start < today:
        raise _invalid(view, "portal.consent.error.past")
    if end is not None and end < start:
        raise _invalid(view, "portal.consent.error.order")
    if start > today + timedelta(days=366 * 5) or (end and end > today + timedelta(days=366 * 50)):
        raise _invalid(view, "portal.consent.error.far")
    return GrantRequest(actor, categories, sensitive, start.isoformat(),
                        end.isoformat() if end else None)  # fmt: skip


def _directory(repo: Repository) -> dict[str, str]:
    """Organization id → name, from the directory (the patient's view: directory data is
    readable by everyone signed in)."""
    page = repo.search(parse_search("Organization", [("_count", "500"), ("_sort", "name")]))
    return {m.id: str(m.resource.get("name") or m.id) for m in page.matches}


@dataclass(frozen=True, slots=True)
class GrantRow:
    """One grant as listed: its Consents (one, or two with sensitive categories) folded."""

    consent_id: str
    grant_id: str | None
    active: bool
    actor: str | None
    actor_name: str
    categories: tuple[str, ...]  # category keys; empty: everything not sensitive
    other_types: tuple[str, ...]  # types outside the categories (a grant made via the API)
    sensitive: tuple[str, ...]
    start: str | None
    end: str | None
    expired: bool


def _grant_rows(consents: list[dict[str, Any]], names: dict[str, str], today: str
                ) -> list[GrantRow]:  # fmt: skip
    groups: dict[str, list[ConsentSummary]] = {}
    for consent in consents:
        s = summarize(consent)
        if s.kind != "permit":
            continue
        groups.setdefault(s.grant_id or s.id, []).append(s)
    rows: list[GrantRow] = []
    for members in groups.values():
        first = members[0]
        types = {t for m in members for t in m.resource_types}
        labels = {lb for m in members for lb in m.labels}
        categories = tuple(c for c, ts in CATEGORIES.items() if types and set(ts) <= types)
        covered = {t for c in categories for t in CATEGORIES[c]} | set(ALWAYS_SHARED)
        sensitive = tuple(k for k, ls in SENSITIVE.items() if labels & set(ls))
        actor = first.actor
        org = actor.removeprefix("Organization/") if actor else None
        rows.append(GrantRow(
            first.id, first.grant_id, all(m.status == "active" for m in members), actor,
            names.get(org or "", actor or ""), categories,
            tuple(sorted(types - covered)), sensitive,
            first.start[:10] if first.start else None,  # the day, as the patient chose it
            first.end[:10] if first.end else None,
            bool(first.end and first.end[:10] < today),
        ))  # fmt: skip
    rows.sort(key=lambda r: (not r.active, r.start or ""), reverse=False)
    return rows


async def _consents_view(site: Site, view: View) -> dict[str, Any]:
    principal = _principal(view)
    repo = site.repo(view)
    today = site.today().isoformat()

    def load() -> dict[str, Any]:
        names = _directory(repo)
        consents = patient_consents(repo, principal.patient_ids)
        return {"grants": _grant_rows(consents, names, today), "organizations": names}

    return await site.call(load)


async def _read_multi(site: Site, request: Request, view: View) -> dict[str, list[str]]:
    return await read_form_multi(request, view, site.services.secret)


def _render_consents(site: Site, view: View, data: dict[str, Any], status: int = 200, *,
                     problem: str = "", done: str = "", form: dict[str, list[str]] | None = None
                     ) -> Response:  # fmt: skip
    return site.pages.render(
        view, "portal_consents.html", status, problem=problem, done=done,
        form=form or {}, categories=list(CATEGORIES), sensitive=list(SENSITIVE),
        default=site.services.policy.consent_default, today=site.today().isoformat(),
        section="portal", subsection="consents", **data,
    )  # fmt: skip


async def consents_page(site: Site, request: Request, view: View) -> Response:
    data = await _consents_view(site, view)
    done = {"granted": "portal.consent.granted", "revoked": "portal.consent.revoked"}.get(
        request.query_params.get("done", ""), "")
    return _render_consents(site, view, data, done=view.t(done) if done else "")


def _consent_service(site: Site, view: View) -> Any:
    service = site.services.consent
    if service is None:
        raise FhirError(Category.UNAVAILABLE, view.t("portal.unavailable"))
    return service


async def grant_consent(site: Site, request: Request, view: View) -> Response:
    fields = await _read_multi(site, request, view)
    principal = _principal(view)
    service = _consent_service(site, view)
    data = await _consents_view(site, view)
    try:
        grant = parse_grant(fields, view, site.today(), set(data["organizations"]))
    except FhirError as err:
        return _render_consents(site, view, data, 400, problem=view.pick(err.message),
                                form=fields)  # fmt: skip
    patient_id = min(principal.patient_ids)
    resources = build_grant(
        patient_id, grant_id=service.new_id(), now=site.services.clock(), actor=grant.actor,
        resource_types=grant.resource_types, labels=grant.labels, start=grant.start,
        end=grant.end, sensitive_labels=site.services.policy.sensitive_labels,
    )  # fmt: skip
    repo = site.repo(view)

    def write() -> None:
        CURRENT_PRINCIPAL.set(principal)  # the consent guard checks the record is theirs
        with repo.transaction() as tx:
            for resource in resources:
                tx.create(resource)

    await site.audited(request, view, "create", "Consent", None, write,
                       [("page", "portal-consent-grant")])  # fmt: skip
    return RedirectResponse(f"{PORTAL}/consents?done=granted", 303)


async def revoke_consent(site: Site, request: Request, view: View) -> Response:
    await read_form(request, view, site.services.secret)
    principal = _principal(view)
    consent_id = request.path_params["consent_id"]
    if not _ID.fullmatch(consent_id):
        raise FhirError(Category.NOT_FOUND, view.t("error.no_such_resource"))
    repo = site.repo(view)

    def revoke() -> None:
        CURRENT_PRINCIPAL.set(principal)
        target = repo.read("Consent", consent_id).resource  # NOT_FOUND when not theirs
        grant_id = summarize(target).grant_id
        siblings = [c for c in patient_consents(repo, principal.patient_ids)
                    if grant_id is not None and summarize(c).grant_id == grant_id] or [target]
        with repo.transaction() as tx:
            for consent in siblings:
                if consent.get("status") != "inactive":
                    tx.update({**consent, "status": "inactive"})

    await site.audited(request, view, "update", "Consent", consent_id, revoke,
                       [("page", "portal-consent-revoke")])  # fmt: skip
    return RedirectResponse(f"{PORTAL}/consents?done=revoked", 303)


# -- share codes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShareRequest:
    categories: tuple[str, ...]
    sensitive: tuple[str, ...]
    valid_minutes: int
    access_hours: int

    @property
    def resource_types(self) -> tuple[str, ...]:
        return GrantRequest(None, self.categories, (), "", None).resource_types

    @property
    def labels(self) -> tuple[str, ...]:
        return GrantRequest(None, (), self.sensitive, "", None).labels


def _choice(raw: str, allowed: tuple[int, ...], view: View, key: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or int(raw) not in allowed:
        raise _invalid(view, key)
    return int(raw)


def parse_share(fields: dict[str, list[str]], view: View) -> ShareRequest:
    """The share-code form, checked (the same choices as the consent form, plus how long
    the code stays valid and how long the doctor's access lasts — from fixed lists)."""

    def one(name: str) -> str:
        return (fields.get(name) or [""])[0]

    scope = one("scope")
    if scope == "all":
        categories: tuple[str, ...] = ()
    elif scope == "some":
        categories = _ticked(fields, "category", CATEGORIES, view, "portal.consent.error.category")
        if not categories:
            raise _invalid(view, "portal.consent.error.no_category")
    else:
        raise _invalid(view, "portal.consent.error.scope")
    sensitive = _ticked(fields, "sensitive", SENSITIVE, view, "portal.consent.error.sensitive")
    valid = _choice(one("valid"), SHARE_VALID_MINUTES, view, "portal.share.error.valid")
    hours = _choice(one("hours"), SHARE_ACCESS_HOURS, view, "portal.share.error.hours")
    return ShareRequest(categories, sensitive, valid, hours)


def _share_service(site: Site, view: View) -> Any:
    service = site.services.share_codes
    if service is None:
        raise FhirError(Category.UNAVAILABLE, view.t("portal.unavailable"))
    return service


def _render_share(site: Site, view: View, codes: list[Any], status: int = 200, *,
                  issued: Any = None, problem: str = "", done: str = "",
                  form: dict[str, list[str]] | None = None) -> Response:  # fmt: skip
    qr = qr_svg(issued.qr_payload, view.t("portal.share.qr_title", code=issued.display)) \
        if issued is not None else None  # fmt: skip
    return site.pages.render(
        view, "portal_share.html", status, codes=codes, issued=issued, qr=qr, problem=problem,
        done=done, form=form or {}, categories=list(CATEGORIES), sensitive=list(SENSITIVE),
        valid_choices=SHARE_VALID_MINUTES, hour_choices=SHARE_ACCESS_HOURS,
        section="portal", subsection="share",
        # the code is shown once: never let a shared computer's history keep it
        headers={"Cache-Control": "no-store"},
    )  # fmt: skip


async def share_page(site: Site, request: Request, view: View) -> Response:
    principal = _principal(view)
    service = _share_service(site, view)
    codes = await site.call(service.list_for_patient, principal)
    done = "portal.share.withdrawn" if request.query_params.get("done") == "withdrawn" else ""
    return _render_share(site, view, codes, done=view.t(done) if done else "")


async def issue_share_code(site: Site, request: Request, view: View) -> Response:
    fields = await _read_multi(site, request, view)
    principal = _principal(view)
    service = _share_service(site, view)
    try:
        wanted = parse_share(fields, view)
    except FhirError as err:
        codes = await site.call(service.list_for_patient, principal)
        return _render_share(site, view, codes, 400, problem=view.pick(err.message), form=fields)
    issued = await site.call(
        service.issue, principal, patient_id=min(principal.patient_ids),
        resource_types=wanted.resource_types, labels=wanted.labels,
        valid_minutes=wanted.valid_minutes, access_hours=wanted.access_hours,
    )  # fmt: skip
    codes = await site.call(service.list_for_patient, principal)
    return _render_share(site, view, codes, 201, issued=issued)


async def withdraw_share_code(site: Site, request: Request, view: View) -> Response:
    await read_form(request, view, site.services.secret)
    principal = _principal(view)
    service = _share_service(site, view)
    code_id = request.path_params["code_id"]
    if not _ID.fullmatch(code_id):
        raise FhirError(Category.NOT_FOUND, view.t("error.no_such_resource"))
    await site.call(service.withdraw, principal, code_id)
    return RedirectResponse(f"{PORTAL}/share?done=withdrawn", 303)


# -- who accessed my record --------------------------------------------------------------


def _audit_service(site: Site, view: View) -> Any:
    recorder = site.services.audit
    if recorder is None:
        raise FhirError(Category.UNAVAILABLE, view.t("portal.access.unavailable"))
    return recorder.service


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 18 else None


async def access_page(site: Site, request: Request, view: View) -> Response:
    principal = _principal(view)
    service = _audit_service(site, view)
    mine = request.query_params.get("mine") == "1"
    before = _before(request)
    address = request.client.host if request.client else None
    accounts = site.services.auth.accounts if site.services.auth is not None else None
    rows, more, checkpoint = await site.call(
        access_rows, service, site.services.repo, accounts, principal, view.lang,
        include_own=mine, before_seq=before, count=_ACCESS_PAGE, address=address,
    )  # fmt: skip
    glass: list[Any] = []
    if site.services.break_glass is not None:
        glass = await site.call(site.services.break_glass.for_patients,
                                sorted(principal.patient_ids))  # fmt: skip
    return site.pages.render(
        view, "portal_access.html", rows=rows, more=more, mine=mine, checkpoint=checkpoint,
        glass=glass, now=site.services.clock(), section="portal", subsection="access",
    )  # fmt: skip


async def proof_json(site: Site, request: Request, view: View) -> Response:
    principal = _principal(view)
    service = _audit_service(site, view)
    raw = request.path_params["index"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise FhirError(Category.NOT_FOUND, view.t("error.no_such_resource"))
    address = request.client.host if request.client else None
    # a file the patient keeps: recorded as an export of their audit entry
    document = await site.call(proof_document, service, int(raw), principal, address,
                               action="export")
    return Response(orjson.dumps(document, option=orjson.OPT_INDENT_2), 200,
                    media_type="application/json",
                    headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                             "Content-Disposition": f'inline; filename="audit-{raw}.json"'})


__all__ += ["AccessRow", "OwnRecord", "load_own_record"]


def needs_sign_in(feature: str, handler: Handler) -> Handler:
    """``handler``, except with authentication off (the open demo): these pages act for a
    signed-in person (a resident, an auditor), so the demo shows a plain frame saying so."""

    async def page(site: Site, request: Request, view: View) -> Response:
        if not view.auth_on:
            status = 200 if request.method in ("GET", "HEAD") else 403
            return site.pages.render(
                view, "unavailable.html", status, feature=feature, connected=False,
                headline="feature.needs_sign_in",
                section="portal" if feature == "portal" else "operator",
                subsection="record" if feature == "portal" else "audit",
            )  # fmt: skip
        return await handler(site, request, view)

    page.__name__ = handler.__name__
    return page
