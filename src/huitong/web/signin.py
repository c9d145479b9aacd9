"""Signing in and out of the pages (authentication on; see :mod:`huitong.web.session`).

    GET  /app/signin?next=      the form (user name and password; then the TOTP code)
    POST /app/signin            step ``password`` or ``totp`` (with the session's CSRF token)
    POST /app/signout           revoke the session's tokens, forget the cookies

Failures are shown on the form in both languages (the sign-in service's own messages); the
password is never re-sent to the browser, the TOTP step carries only the sign-in ticket.
A successful sign-in starts a new CSRF session, so a token from before sign-in is useless.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from huitong.access.signin import SignInOutcome, SignInResult
from huitong.web.csrf import SESSION_COOKIE, new_session_id
from huitong.web.forms import read_form
from huitong.web.rendering import APP_PATH, View
from huitong.web.session import ACCESS_COOKIE, REFRESH_COOKIE
from huitong.web.site import Site, root_of

__all__ = ["safe_next", "signin_form", "signin_submit", "signout"]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path under ``/app`` on this site, else the home
    page (an open redirect would let a link send the person anywhere once signed in)."""
    if (not target or not target.startswith(APP_PATH) or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 for c in target)):  # fmt: skip
        return f"{APP_PATH}/"
    return target


def _form(site: Site, view: View, *, status: int = 200, step: str = "password",
          ticket: str = "", username: str = "", error: str = "", next_url: str = "",
          ) -> Response:  # fmt: skip
    return site.pages.render(view, "signin.html", status, step=step, ticket=ticket,
                             username=username, error=error, next_url=safe_next(next_url),
                             section="signin")  # fmt: skip


async def signin_form(site: Site, request: Request, view: View) -> Response:
    return _form(site, view, next_url=request.query_params.get("next", ""))


def _message(view: View, result: SignInResult) -> str:
    return result.en if view.lang == "en" else result.zh


async def signin_submit(site: Site, request: Request, view: View) -> Response:
    sessions = site.services.sessions
    if sessions is None:
        return _form(site, view, status=404)
    fields = await read_form(request, view, site.services.secret)
    next_url = fields.get("next", "")
    if fields.get("step") == "totp":
        result = await site.call(sessions.totp, fields.get("ticket", ""), fields.get("totp", ""))
    else:
        result = await site.call(sessions.password, fields.get("username", "").strip()[:200],
                                 fields.get("password", "")[:1000])  # fmt: skip
    if result.outcome is SignInOutcome.OK:
        tokens = await site.call(sessions.issue, result, root_of(request))
        response = RedirectResponse(safe_next(next_url), 303)
        site.remember_session(response, view, tokens)
        response.set_cookie(SESSION_COOKIE, new_session_id(), httponly=True, path=APP_PATH,
                            samesite="strict", secure=view.secure)  # fmt: skip
        return response
    if result.outcome is SignInOutcome.TOTP_REQUIRED and result.ticket:
        return _form(site, view, status=401 if result.en else 200, step="totp",
                     ticket=result.ticket, error=_message(view, result), next_url=next_url)
    return _form(site, view, status=401, username=fields.get("username", "")[:200],
                 error=_message(view, result), next_url=next_url)


async def signout(site: Site, request: Request, view: View) -> Response:
    await read_form(request, view, site.services.secret)
    sessions = site.services.sessions
    response = RedirectResponse(f"{APP_PATH}/signin?signed_out=1", 303)
    if sessions is not None:
        await site.call(sessions.sign_out, request.cookies.get(ACCESS_COOKIE),
                        request.cookies.get(REFRESH_COOKIE))  # fmt: skip
        site.forget_session(response, view)
    return response
