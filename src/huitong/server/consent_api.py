"""The consent APIs (JSON) for the portal and the clinician pages (issue 5, "Consent"):

    GET  /api/consents                      the signed-in patient's consents
    POST /api/consents                      grant {"actor": "Organization/x" | "Practitioner/y"
                                            | null (any treating clinician), "resourceTypes":
                                            [...], "labels": [...], "start", "end", "patient"}
    POST /api/consents/{id}/revoke          revoke (status inactive; the whole grant)
    POST /api/consent/decision              {"patient", "actor": {"organization",
                                            "practitioner"}, "resourceType", "labels"}
                                            → permit/deny with the reason in both languages
    POST /api/share-codes                   patient: issue {"resourceTypes", "labels",
                                            "validMinutes", "accessHours", "patient"}
    GET  /api/share-codes                   patient: their codes; clinician: their grants
    POST /api/share-codes/{id}/withdraw     patient: withdraw a code or end its grant
    POST /api/share-codes/redeem            clinician: {"code"} → time-limited access
    POST /api/break-glass                   clinician: {"patient", "reason"}
    GET  /api/break-glass                   patient: who broke the glass on their record,
                                            when and why; clinician: their own sessions
    POST /api/break-glass/{id}/close        clinician: end a session early

Every call acts as the principal of its bearer token (these APIs exist only with
authentication on: with it off there is nobody to act for). Consents are real FHIR Consent
resources written through the principal's authorized view of the repository, so the same
policy and ownership checks apply as to ``/fhir/Consent``. Times are FHIR instants (UTC).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from huitong.access.break_glass import BreakGlassService, BreakGlassSession
from huitong.access.consent_events import ConsentEventSink, discard_consent_event
from huitong.access.consents import (
    CURRENT_PRINCIPAL,
    build_grant,
    consent_decision,
    patient_consents,
    summarize,
)
from huitong.access.policy import PolicySettings
from huitong.access.principal import Principal, Role
from huitong.access.share_codes import (
    IssuedCode,
    ShareCodeService,
    ShareCodeSummary,
    check_resource_types,
    check_scope,
    patient_of,
)
from huitong.clock import Clock, IdFactory
from huitong.fhir.dates import format_instant
from huitong.fhir.definitions import resource_types
from huitong.fhir.errors import Category, FhirError
from huitong.server.api_support import api_endpoint, error_json, json_response, read_json
from huitong.server.authn import authenticate_request, www_authenticate
from huitong.server.authorization import AuthorizedRepository
from huitong.store.repository import Repository

__all__ = ["ConsentServices", "consent_routes", "region_policy"]


def region_policy(settings: Any) -> PolicySettings:
    """The policy settings of ``settings`` (``HUITONG_CONSENT_DEFAULT``); ValueError with a
    bilingual message for an unknown default, so a typo stops the server at start-up."""
    default = str(settings.consent_default).strip().lower()
    if default not in ("opt-in", "opt-out"):
        raise ValueError(
            f"HUITONG_CONSENT_DEFAULT must be opt-in or opt-out, not {default!r} / "
            f"HUITONG_CONSENT_DEFAULT 须为 opt-in 或 opt-out"
        )
    return PolicySettings(consent_default=default)  # type: ignore[arg-type]


@dataclass
class ConsentServices:
    """What the consent APIs (and the web pages) use, built once per app."""

    repo: Repository
    clock: Clock
    new_id: IdFactory
    policy: PolicySettings = field(default_factory=PolicySettings)
    break_glass_hours: int = 4
    on_event: ConsentEventSink = discard_consent_event
    share_code_key_file: str = ""  # HUITONG_SHARE_CODE_KEY_FILE (access/secrets.py)
    share_codes: ShareCodeService = field(init=False)
    break_glass: BreakGlassService = field(init=False)

    def __post_init__(self) -> None:
        self.share_codes = ShareCodeService(
            self.repo, clock=self.clock, new_id=self.new_id, on_event=self.emit,
            sensitive_labels=self.policy.sensitive_labels, key_file=self.share_code_key_file,
        )  # fmt: skip
        if self.share_code_key_file:  # a bad key file stops the server at start-up
            self.share_codes._hash_key()
        self.break_glass = BreakGlassService(
            self.repo, clock=self.clock, new_id=self.new_id, hours=self.break_glass_hours,
            on_event=self.emit,
        )  # fmt: skip

    def emit(self, event: Any, tx: Any = None) -> None:
        # looked up at each event, so the audit log can subscribe after the app is built
        self.on_event(event, tx)

    def view(self, principal: Principal) -> AuthorizedRepository:
        return AuthorizedRepository(self.repo, principal, self.clock, self.policy)


def _instant(us: int | None) -> str | None:
    return None if us is None else format_instant(us)


def _issued_json(c: IssuedCode) -> dict[str, Any]:
    return {
        "code": c.code, "display": c.display, "codeId": c.code_id, "patient": c.patient_id,
        "qr": c.qr_payload, "expiresAt": _instant(c.expires_at),
        "accessHours": c.access_us // 3_600_000_000,
        "resourceTypes": list(c.resource_types), "labels": list(c.labels),
    }  # fmt: skip


def _code_json(s: ShareCodeSummary) -> dict[str, Any]:
    return {
        "codeId": s.code_id, "patient": s.patient_id, "status": s.status,
        "createdAt": _instant(s.created_at), "expiresAt": _instant(s.expires_at),
        "resourceTypes": list(s.resource_types), "labels": list(s.labels),
        "redeemedAt": _instant(s.redeemed_at), "redeemedBy": s.redeemed_by,
        "redeemedByName": s.redeemed_by_name, "redeemedOrganization": s.redeemed_org,
        "accessUntil": _instant(s.grant_until),
    }  # fmt: skip


def _session_json(s: BreakGlassSession, now: int) -> dict[str, Any]:
    return {
        "id": s.id, "patient": s.patient_id, "user": s.user_id, "userName": s.user_name,
        "practitioner": s.practitioner_id, "organization": s.organization_id,
        "reason": s.reason, "start": _instant(s.started_at), "until": _instant(s.until),
        "closedAt": _instant(s.closed_at), "active": s.active(now),
    }  # fmt: skip


async def _object(request: Request) -> dict[str, Any]:
    body = await read_json(request, 64 * 1024)
    if not isinstance(body, dict):
        raise FhirError(Category.INVALID, "expected a JSON object / 需要 JSON 对象")
    return body


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FhirError(
            Category.INVALID, f"'{key}' must be a list of strings / “{key}”须为字符串列表"
        )
    return value


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise FhirError(Category.INVALID, f"'{key}' must be a string / “{key}”须为字符串")
    return value or None


def _opt_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise FhirError(Category.INVALID, f"'{key}' must be a whole number / “{key}”须为整数")
    return value


def consent_routes(services: ConsentServices, auth: Any) -> list[Route]:
    """The routes above; ``auth`` is the AuthService (None when authentication is off)."""

    Handler = Callable[[Request, Principal], Awaitable[Response]]

    def endpoint(work: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            if auth is None:
                raise FhirError(
                    Category.FORBIDDEN,
                    "These APIs act for a signed-in person; authentication is off on this "
                    "server / 这些接口代表已登录用户操作；本服务未启用身份认证",
                )
            try:
                principal = await run_in_threadpool(authenticate_request, request, auth)
            except FhirError as err:
                resp = error_json(err)
                resp.headers["WWW-Authenticate"] = www_authenticate(err)
                return resp
            if principal is None:
                resp = error_json(FhirError(
                    Category.UNAUTHORIZED,
                    "This API requires an OAuth 2 bearer token / 需要提供 OAuth 2 访问令牌",
                ))  # fmt: skip
                resp.headers["WWW-Authenticate"] = www_authenticate()
                return resp
            # Consent writes below are checked against this principal (access/consents.py)
            CURRENT_PRINCIPAL.set(principal)
            return await work(request, principal)

        return api_endpoint(run)

    def now() -> int:
        return services.clock()

    # -- consents ------------------------------------------------------------------------
    async def list_consents(request: Request, p: Principal) -> Response:
        patient_of(p, next(iter(p.patient_ids), None))
        check_scope(p, "search-type", "Consent")
        consents = await run_in_threadpool(patient_consents, services.view(p), p.patient_ids)
        return json_response({"consents": [summarize(c).to_json() for c in consents],
                              "default": services.policy.consent_default})  # fmt: skip

    async def grant(request: Request, p: Principal) -> Response:
        body = await _object(request)
        pid = patient_of(p, _opt_str(body, "patient"))
        types = check_resource_types(_strings(body, "resourceTypes"))
        grant_id = services.new_id()
        resources = build_grant(
            pid, grant_id=grant_id, now=now(), actor=_opt_str(body, "actor"),
            resource_types=types, labels=_strings(body, "labels"),
            start=_opt_str(body, "start"), end=_opt_str(body, "end"),
            sensitive_labels=services.policy.sensitive_labels,
        )  # fmt: skip

        def write() -> list[dict[str, Any]]:
            with services.view(p).transaction() as tx:
                return [tx.create(r).stored.resource for r in resources]

        created = await run_in_threadpool(write)
        listed = [summarize(c).to_json() for c in created]
        return json_response({"grant": grant_id, "consents": listed}, 201)

    async def revoke(request: Request, p: Principal) -> Response:
        cid = request.path_params["id"]
        patient_of(p, next(iter(p.patient_ids), None))
        view = services.view(p)

        def work() -> list[dict[str, Any]]:
            target = view.read("Consent", cid).resource  # NOT_FOUND when not theirs
            grant_id = summarize(target).grant_id
            siblings = [
                c for c in patient_consents(view, p.patient_ids)
                if grant_id is not None and summarize(c).grant_id == grant_id
            ] or [target]  # fmt: skip
            out = []
            with view.transaction() as tx:
                for c in siblings:
                    if c.get("status") != "inactive":
                        c = tx.update({**c, "status": "inactive"}).stored.resource
                    out.append(c)
            return out

        revoked = await run_in_threadpool(work)
        return json_response({"consents": [summarize(c).to_json() for c in revoked]})

    async def decision(request: Request, p: Principal) -> Response:
        body = await _object(request)
        pid = _opt_str(body, "patient")
        rtype = _opt_str(body, "resourceType")
        if not pid or not rtype:
            raise FhirError(Category.INVALID, "'patient' and 'resourceType' are required / "
                            "缺少“patient”或“resourceType”")  # fmt: skip
        if rtype not in resource_types():
            raise FhirError(
                Category.INVALID, f"Unknown resource type / 未知的资源类型：{rtype[:60]}"
            )
        actor = body.get("actor") or {}
        if isinstance(actor, str):
            kind, _, rid = actor.partition("/")
            actor = {kind.lower(): rid}
        if not isinstance(actor, dict):
            raise FhirError(Category.INVALID, "'actor' must be an object / “actor”须为对象")
        org, pract = actor.get("organization"), actor.get("practitioner")
        if p.role is Role.PATIENT:
            patient_of(p, pid)
        elif p.role is Role.CLINICIAN:
            # a clinician asks about their own access only
            if (org and org != p.organization_id) or (pract and pract != p.practitioner_id):
                raise FhirError(Category.FORBIDDEN, "Clinicians may ask only about their own "
                                "access / 临床医生只能查询本人的访问权限")  # fmt: skip
            org, pract = p.organization_id, p.practitioner_id
        elif p.role not in (Role.AUDITOR, Role.SYSTEM):
            raise FhirError(Category.FORBIDDEN, "This role may not ask for consent decisions / "
                            "此角色不能查询同意决定")  # fmt: skip
        if not org and not pract:
            raise FhirError(Category.INVALID, "'actor' needs an organization or a practitioner "
                            "/ “actor”须包含机构或医生")  # fmt: skip
        labels = _strings(body, "labels")
        result = await run_in_threadpool(lambda: consent_decision(
            services.repo, patient_id=pid, organization_id=org, practitioner_id=pract,
            resource_type=rtype, labels=labels, now=now(),
            default=services.policy.consent_default,
            sensitive_labels=services.policy.sensitive_labels,
        ))  # fmt: skip
        return json_response(result)

    # -- share codes ---------------------------------------------------------------------
    async def issue_code(request: Request, p: Principal) -> Response:
        body = await _object(request)
        issued = await run_in_threadpool(lambda: services.share_codes.issue(
            p, patient_id=_opt_str(body, "patient"),
            resource_types=_strings(body, "resourceTypes"), labels=_strings(body, "labels"),
            valid_minutes=_opt_int(body, "validMinutes"),
            access_hours=_opt_int(body, "accessHours"),
        ))  # fmt: skip
        return json_response(_issued_json(issued), 201)

    async def list_codes(request: Request, p: Principal) -> Response:
        svc = services.share_codes
        if p.role is Role.CLINICIAN:
            items = await run_in_threadpool(svc.list_for_clinician, p)
        else:
            items = await run_in_threadpool(svc.list_for_patient, p)
        return json_response({"shareCodes": [_code_json(s) for s in items]})

    async def withdraw_code(request: Request, p: Principal) -> Response:
        cid = request.path_params["id"]
        summary = await run_in_threadpool(services.share_codes.withdraw, p, cid)
        return json_response(_code_json(summary))

    async def redeem_code(request: Request, p: Principal) -> Response:
        body = await _object(request)
        code = body.get("code")
        if not isinstance(code, str) or not code.strip():
            raise FhirError(Category.INVALID, "'code' is required / 缺少“code”")
        g = await run_in_threadpool(services.share_codes.redeem, p, code)
        return json_response({
            "patient": g.patient_id, "codeId": g.code_id, "until": _instant(g.until),
            "resourceTypes": sorted(g.resource_types), "labels": sorted(g.labels),
        })  # fmt: skip

    # -- break-glass ---------------------------------------------------------------------
    async def open_glass(request: Request, p: Principal) -> Response:
        body = await _object(request)
        session = await run_in_threadpool(
            services.break_glass.open,
            p,
            _opt_str(body, "patient") or "",
            body.get("reason") if isinstance(body.get("reason"), str) else "",
        )
        return json_response(_session_json(session, now()), 201)

    async def list_glass(request: Request, p: Principal) -> Response:
        svc = services.break_glass
        if p.role is Role.CLINICIAN and p.user_id:
            items = await run_in_threadpool(svc.for_user, p.user_id)
        else:
            patient_of(p, next(iter(p.patient_ids), None))
            items = await run_in_threadpool(svc.for_patients, sorted(p.patient_ids))
        t = now()
        return json_response({"breakGlass": [_session_json(s, t) for s in items]})

    async def close_glass(request: Request, p: Principal) -> Response:
        session = await run_in_threadpool(services.break_glass.close, p,
                                          request.path_params["id"])  # fmt: skip
        return json_response(_session_json(session, now()))

    return [
        Route("/api/consents", endpoint(list_consents), methods=["GET"]),
        Route("/api/consents", endpoint(grant), methods=["POST"]),
        Route("/api/consents/{id}/revoke", endpoint(revoke), methods=["POST"]),
        Route("/api/consent/decision", endpoint(decision), methods=["POST"]),
        Route("/api/share-codes/redeem", endpoint(redeem_code), methods=["POST"]),
        Route("/api/share-codes", endpoint(list_codes), methods=["GET"]),
        Route("/api/share-codes", endpoint(issue_code), methods=["POST"]),
        Route("/api/share-codes/{id}/withdraw", endpoint(withdraw_code), methods=["POST"]),
        Route("/api/break-glass", endpoint(list_glass), methods=["GET"]),
        Route("/api/break-glass", endpoint(open_glass), methods=["POST"]),
        Route("/api/break-glass/{id}/close", endpoint(close_glass), methods=["POST"]),
    ]
