"""The pages' shared machinery: the services, the renderer, and :meth:`Site.endpoint`, which
wraps every page handler so that failures become bilingual error pages — a category's
status for a :class:`FhirError`, a plain 500 page (logged without personal data) for a bug.
No input reaches the browser as an unhandled exception.

With authentication on, :meth:`Site.endpoint` also resolves the signed-in person from the
session cookies (:mod:`huitong.web.session`) and checks the page's :class:`Audience`: nobody
signed in → the sign-in page; the wrong role → a page that says whom it is for (403). Pages
read through :meth:`Site.repo`, which is the principal's
:class:`~huitong.server.authorization.AuthorizedRepository`: a page shows exactly what the
API would show the same person. With authentication off (the demo) nothing is checked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from huitong.access.principal import Role
from huitong.fhir.errors import Category, FhirError
from huitong.store.repository import Repository
from huitong.web.display import CST
from huitong.web.rendering import APP_PATH, Pages, View, view_for
from huitong.web.services import WebServices
from huitong.web.session import ACCESS_COOKIE, REFRESH_COOKIE, SignedIn, Tokens

__all__ = ["Audience", "Handler", "Site"]

log = logging.getLogger("huitong.web")

T = TypeVar("T")
Handler = Callable[["Site", Request, View], Awaitable[Response]]


class Audience(StrEnum):
    """Who a page is for when authentication is on."""

    PUBLIC = "public"  # anyone (home, sign-in, errors)
    SIGNED_IN = "signed-in"  # any signed-in role
    CLINICIAN = "clinician"
    OPERATOR = "operator"
    PATIENT = "patient"  # the patient portal: a resident signed in to their own record
    AUDITOR = "auditor"  # the audit pages: only auditors read the whole log
    RECORD = "record"  # one resource as stored: clinicians, and residents for their own


_ROLES: dict[Audience, frozenset[Role]] = {
    Audience.CLINICIAN: frozenset({Role.CLINICIAN}),
    Audience.OPERATOR: frozenset({Role.PLATFORM_ADMIN}),
    Audience.PATIENT: frozenset({Role.PATIENT}),
    Audience.AUDITOR: frozenset({Role.AUDITOR}),
    Audience.RECORD: frozenset({Role.CLINICIAN, Role.PATIENT}),
}


@dataclass(frozen=True, slots=True)
class _PageInteraction:
    """A page's work as the audit recorder runs an interaction: ``codes`` names the FHIR
    interaction it amounts to, ``handler(ctx, req)`` does it."""

    codes: tuple[str, ...]
    work: Callable[[], Any]

    def handler(self, ctx: Any, req: Any) -> Any:
        return self.work()


@dataclass(frozen=True, slots=True)
class _PageRequest:
    path_params: dict[str, str]
    params: list[tuple[str, str]]


def root_of(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


class Site:
    def __init__(self, services: WebServices) -> None:
        self.services = services
        self.pages = Pages()

    def endpoint(
        self, handler: Handler, audience: Audience = Audience.PUBLIC
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            view = view_for(request, self.services.secret)
            try:
                ended = False
                sessions = self.services.sessions
                if sessions is not None:
                    view.auth_on = True
                    access = request.cookies.get(ACCESS_COOKIE)
                    refresh = request.cookies.get(REFRESH_COOKIE)
                    view.who = await self.call(sessions.resolve, access, refresh,
                                               root_of(request))
                    ended = view.who is None and bool(access or refresh)
                    refused = self._refuse(request, view, audience)
                    if refused is not None:
                        if ended:
                            self.forget_session(refused, view)
                        return refused
                response = await handler(self, request, view)
                who: SignedIn | None = view.who
                if who is not None and who.refreshed is not None:
                    self.remember_session(response, view, who.refreshed)
                elif ended:
                    self.forget_session(response, view)
                return response
            except FhirError as err:
                return self.pages.failure(view, err)
            except Exception as exc:
                # The type only: messages can carry personal data.
                log.error("web page %s failed: %s", request.url.path, type(exc).__name__,
                          exc_info=log.isEnabledFor(logging.DEBUG))
                return self.pages.error(view, 500)

        run.__name__ = handler.__name__
        return run

    def _refuse(self, request: Request, view: View, audience: Audience) -> Response | None:
        """The answer when ``view.who`` may not see a page for ``audience``; None if allowed."""
        if audience is Audience.PUBLIC:
            return None
        who: SignedIn | None = view.who
        if who is None:
            if request.method in ("GET", "HEAD"):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"{APP_PATH}/signin?next={quote(target, safe='')}", 303)
            return self.pages.error(view, 401, view.t("signin.required"))
        allowed = _ROLES.get(audience)
        if allowed is not None and who.role not in allowed:
            return self.pages.render(
                view, "wrong_role.html", 403, audience=audience.value,
                role=who.role.value, section="",
            )
        return None

    def repo(self, view: View) -> Repository:
        """What this request may read: the signed-in principal's view of the repository
        (authentication on), else the repository itself (the demo) — either under the
        audit log's recording view when the audit log is on, as the FHIR API reads."""
        base: Any = self.services.repo
        if self.services.audit is not None:
            base = self.services.audit.reading_view(base)
        if not view.auth_on:
            return base  # type: ignore[no-any-return]
        who: SignedIn | None = view.who
        if who is None:
            raise FhirError(Category.UNAUTHORIZED, view.t("signin.required"))
        # imported here: huitong.server imports this package when it builds the app
        from huitong.server.authorization import AuthorizedRepository

        view_repo: Any = AuthorizedRepository(base, who.principal, self.services.clock,
                                              self.services.policy)
        return view_repo  # type: ignore[no-any-return]

    async def audited(self, request: Request, view: View, action: str, resource_type: str,
                      resource_id: str | None, work: Callable[[], T],
                      params: list[tuple[str, str]] | None = None) -> T:  # fmt: skip
        """Run ``work`` (which reads through :meth:`repo`) in the thread pool as one audited
        request, as the FHIR API records its interactions: ``action`` is the FHIR
        interaction it amounts to (``read``, ``search-type``); the audit entry lists every
        resource and patient the page read, or the failure. Without an audit log, just runs
        ``work``. ``params`` go into the entry's query: never what a person typed."""
        recorder = self.services.audit
        if recorder is None:
            return await self.call(work)
        who: SignedIn | None = view.who
        path = {"type": resource_type, **({"id": resource_id} if resource_id else {})}
        page = _PageRequest(path, params or [("page", request.url.path.split("/")[2])])
        address = request.client.host if request.client else None
        result: T = await self.call(recorder.run, _PageInteraction((action,), work), None, page,
                                    who.principal if who else None, address)
        return result

    def actor(self, view: View) -> str:
        """Who a change is recorded as: the signed-in user's id, else the demo operator."""
        who: SignedIn | None = view.who
        if who is None:
            return "local-operator"
        return str(who.principal.user_id or who.principal.client_id)

    def remember_session(self, response: Response, view: View, tokens: Tokens) -> None:
        common: dict[str, Any] = {"path": APP_PATH, "samesite": "lax", "secure": view.secure,
                                  "httponly": True}
        response.set_cookie(ACCESS_COOKIE, tokens.access, **common)
        if tokens.refresh:
            response.set_cookie(REFRESH_COOKIE, tokens.refresh, **common)

    def forget_session(self, response: Response, view: View) -> None:
        for name in (ACCESS_COOKIE, REFRESH_COOKIE):
            response.delete_cookie(name, path=APP_PATH, samesite="lax", secure=view.secure,
                                   httponly=True)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a (synchronous) service call in the thread pool."""
        return await run_in_threadpool(fn, *args, **kwargs)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.services.clock() / 1_000_000, UTC)

    def today(self) -> date:
        return self.now().astimezone(CST).date()
