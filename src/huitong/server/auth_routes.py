"""The authorization server's HTTP endpoints (Starlette routes over
:mod:`huitong.access.oauth_server`):

    GET|POST /oauth/authorize                    sign-in page → code (RFC 6749 §4.1, PKCE S256)
    POST     /oauth/token                        tokens (code, refresh, client credentials)
    POST     /oauth/introspect                   RFC 7662
    POST     /oauth/revoke                       RFC 7009
    GET      /oauth/jwks                         the server's public signing keys
    GET      /.well-known/smart-configuration    SMART discovery (also under /fhir)
    GET      /.well-known/openid-configuration   OpenID Provider metadata

OAuth endpoints answer in OAuth's own JSON error format (RFC 6749 §5.2), not
OperationOutcome: that is what OAuth clients parse. Authlib and the repository are
synchronous; each request runs in a worker thread. Request bodies are form-encoded and at
most 64 KiB. Nothing here logs a request body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from authlib.oauth2 import OAuth2Error
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from huitong.access.discovery import openid_configuration, smart_configuration
from huitong.access.oauth_server import (
    OAuthRequest,
    OAuthResponse,
    SignedInUser,
    build_server,
)
from huitong.access.service import FHIR_PATH, AuthService
from huitong.access.signin import SignInOutcome, SignInResult
from huitong.access.signin_page import SIGNIN_HEADERS, error_page, signin_page
from huitong.server.errors import internal_error_response

__all__ = ["AUTHORIZE_PATH", "MAX_FORM_BYTES", "auth_routes"]

AUTHORIZE_PATH = "/oauth/authorize"
MAX_FORM_BYTES = 64 * 1024
# Parameters of the authorization request carried through the sign-in form.
_AUTHORIZE_PARAMS = frozenset({
    "response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
    "code_challenge_method", "nonce", "aud", "launch", "prompt", "max_age", "ui_locales",
})
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class _BadForm(Exception):
    pass


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _oauth_response(resp: OAuthResponse) -> Response:
    headers = {k: v for k, v in resp.headers if k.lower() != "content-type"}
    if resp.status in (301, 302, 303):
        return Response(b"", resp.status, {**headers, **_NO_STORE})
    body = resp.body if isinstance(resp.body, dict) else {}
    return _json(body, resp.status, {**headers, **_NO_STORE})


async def _read_form(request: Request) -> list[tuple[str, str]]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise _BadForm
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise _BadForm
        chunks.append(chunk)
    try:
        return parse_qsl(b"".join(chunks).decode("utf-8"), keep_blank_values=True,
                         max_num_fields=200)  # fmt: skip
    except (UnicodeDecodeError, ValueError):
        raise _BadForm from None


def _bad_form() -> Response:
    return _json({"error": "invalid_request",
                  "error_description": "Expected an application/x-www-form-urlencoded body "
                  "of at most 64 KiB."}, 400, _NO_STORE)  # fmt: skip


def _guarded(
    work: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            return await work(request)
        except _BadForm:
            return _bad_form()
        except OAuth2Error as err:  # raised before Authlib's own handling (insecure transport)
            body = {"error": err.error, "error_description": err.description or ""}
            return _json(body, err.status_code or 400, _NO_STORE)
        except Exception as exc:  # a bug: logged without its message, answered as a 500
            resp = internal_error_response(exc, where=f"{request.method} {request.url.path}")
            return Response(orjson.dumps(resp.body), resp.status,
                            media_type="application/fhir+json")  # fmt: skip

    return run


def auth_routes(service: AuthService) -> list[Route]:
    """The routes; mount them before the FHIR catch-all route (``/fhir/{path}``) so that
    ``/fhir/.well-known/smart-configuration`` reaches them."""

    def issuer_of(request: Request) -> str:
        return service.issuer(f"{request.url.scheme}://{request.url.netloc}")

    def oauth_request(request: Request, issuer: str, **fields: Any) -> OAuthRequest:
        return OAuthRequest(request.method, issuer + request.url.path, request.headers,
                            **fields)  # fmt: skip

    def authorize_error(err: OAuth2Error) -> Response:
        if err.redirect_uri:
            status, _, headers = err()
            return Response(b"", status, {**dict(headers), **_NO_STORE})
        return HTMLResponse(
            error_page("授权请求无效（客户端或回调地址有误）。",
                       "The authorization request is invalid (client or redirect URI).",
                       f"{err.error}: {err.description or ''}"),
            400, SIGNIN_HEADERS,
        )  # fmt: skip

    def page(params: list[tuple[str, str]], server: Any, grant: Any, *,
             result: SignInResult | None = None, username: str = "",
             status: int = 200) -> Response:  # fmt: skip
        client = grant.request.client
        step = "totp" if result and result.outcome is SignInOutcome.TOTP_REQUIRED else "password"
        html = signin_page(
            params, client_name=client.name or client.client_id, step=step,
            ticket=result.ticket if result else None, username=username,
            error=(result.zh, result.en) if result and result.en else None,
            action=AUTHORIZE_PATH,
        )
        return HTMLResponse(html, status, SIGNIN_HEADERS)

    async def authorize(request: Request) -> Response:
        issuer = issuer_of(request)
        server = build_server(service, issuer)
        if request.method == "GET":
            params = [(k, v) for k, v in request.query_params.multi_items()
                      if k in _AUTHORIZE_PARAMS]  # fmt: skip
            req = oauth_request(request, issuer, query=params)
            try:
                grant = await run_in_threadpool(server.get_consent_grant, req)
            except OAuth2Error as err:
                return authorize_error(err)
            return page(params, server, grant)
        form = await _read_form(request)
        params = [(k, v) for k, v in form if k in _AUTHORIZE_PARAMS]
        fields = {k: v for k, v in reversed(form)}  # first value wins
        req = oauth_request(request, issuer, form=params)

        def sign_in() -> Response:
            try:
                grant = server.get_consent_grant(req)
            except OAuth2Error as err:
                return authorize_error(err)
            client_id = grant.request.client.client_id
            if fields.get("action") == "cancel":
                return _oauth_response(server.create_authorization_response(
                    grant.request, grant_user=None, grant=grant))  # fmt: skip
            if fields.get("step") == "totp":
                result = service.signin.totp(fields.get("ticket", ""), fields.get("totp", ""),
                                             client_id=client_id)  # fmt: skip
            else:
                result = service.signin.password(fields.get("username", ""),
                                                 fields.get("password", ""),
                                                 client_id=client_id)  # fmt: skip
            if result.outcome is SignInOutcome.OK and result.user is not None:
                who = SignedInUser(result.user, result.amr, service.clock())
                return _oauth_response(server.create_authorization_response(
                    grant.request, grant_user=who, grant=grant))  # fmt: skip
            status = 200 if result.outcome is SignInOutcome.TOTP_REQUIRED and not result.en \
                else 401
            return page(params, server, grant, result=result,
                        username=fields.get("username", ""), status=status)  # fmt: skip

        return await run_in_threadpool(sign_in)

    async def token(request: Request) -> Response:
        issuer = issuer_of(request)
        req = oauth_request(request, issuer, form=await _read_form(request))
        server = build_server(service, issuer)
        return _oauth_response(await run_in_threadpool(server.create_token_response, req))

    def endpoint(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            issuer = issuer_of(request)
            req = oauth_request(request, issuer, form=await _read_form(request))
            server = build_server(service, issuer)
            resp = await run_in_threadpool(server.create_endpoint_response, name, req)
            return _oauth_response(resp)

        return run

    async def jwks(request: Request) -> Response:
        keys = await run_in_threadpool(service.keys.jwks)
        return _json(keys, headers={"Cache-Control": "public, max-age=300"})

    async def smart(request: Request) -> Response:
        return _json(smart_configuration(issuer_of(request), service.keys.alg))

    async def openid(request: Request) -> Response:
        return _json(openid_configuration(issuer_of(request), service.keys.alg))

    return [
        Route(AUTHORIZE_PATH, _guarded(authorize), methods=["GET", "POST"]),
        Route("/oauth/token", _guarded(token), methods=["POST"]),
        Route("/oauth/introspect", _guarded(endpoint("introspection")), methods=["POST"]),
        Route("/oauth/revoke", _guarded(endpoint("revocation")), methods=["POST"]),
        Route("/oauth/jwks", _guarded(jwks), methods=["GET"]),
        Route("/.well-known/smart-configuration", _guarded(smart), methods=["GET"]),
        Route(f"{FHIR_PATH}/.well-known/smart-configuration", _guarded(smart), methods=["GET"]),
        Route("/.well-known/openid-configuration", _guarded(openid), methods=["GET"]),
    ]
