"""Signing in to the pages: the first-party client of Huitong's own authorization server.

Why this design (issue 7, brief "sign-in for /app"): the pages are a *client* of the
authorization server like any SMART app, so a page sees exactly what the API would allow
the same person: the session is an ordinary access token, authenticated by
:func:`huitong.server.authn.authenticate` (revocation, disabled users and relinked patient
records act at once) and enforced by :class:`~huitong.server.authorization.AuthorizedRepository`.
The person types the password (and TOTP code) into a page of the pages' own look, checked by
:class:`huitong.access.signin.SignIn` (one lockout counter, one event stream for the audit
log). The tokens are then issued by the server's authorization-code grant with PKCE S256
for the built-in public client ``huitong-web``, run *in process*: the pages and the
authorization server are the same application, so sending the code through the browser
would only expose it. The client's redirect URI is on ``.invalid`` (RFC 6761), so the
client is useless to anyone who tries it at ``/oauth/authorize``.

The browser holds the access token and the refresh token (``online_access``) in HttpOnly,
SameSite=Lax cookies limited to ``/app`` (Secure over https); script never sees them. An
expired access token is refreshed transparently (the refresh token rotates; concurrent
requests of one browser share one refresh, so rotation's reuse detection does not sign
the person out). Signing out revokes the token family.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2 import OAuth2Error

from huitong.access.accounts import User
from huitong.access.clients import ClientKind
from huitong.access.keys import SignatureInvalid
from huitong.access.oauth_server import OAuthRequest, SignedInUser, build_server
from huitong.access.principal import Principal, Role
from huitong.access.service import AuthService
from huitong.access.signin import SignInOutcome, SignInResult
from huitong.fhir.errors import Category, FhirError

__all__ = [
    "ACCESS_COOKIE",
    "REFRESH_COOKIE",
    "WEB_CLIENT_ID",
    "WEB_SCOPE",
    "SignedIn",
    "Tokens",
    "WebSessions",
]

WEB_CLIENT_ID = "huitong-web"
WEB_CLIENT_NAME = "汇通网页 Huitong web pages"
WEB_REDIRECT = "https://huitong-web.invalid/app/callback"
# Every user/ permission: the role policy decides (the scopes add nothing and hide nothing).
WEB_SCOPE = "openid fhirUser online_access user/*.cruds"
ACCESS_COOKIE = "huitong_at"
REFRESH_COOKIE = "huitong_rt"
_SHARED_REFRESH_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Tokens:
    access: str
    refresh: str | None


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The person behind a request: the principal the API would see for the same token,
    the account (for the name in the header), and new tokens if they were refreshed."""

    principal: Principal
    user: User | None
    refreshed: Tokens | None = None

    @property
    def role(self) -> Role:
        return self.principal.role

    @property
    def name(self) -> str:
        if self.user is None:
            return self.principal.client_id or ""
        return self.user.display_name or self.user.username


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _failed(en: str, zh: str) -> FhirError:
    return FhirError(Category.UNAUTHORIZED, f"{en} / {zh}")


class WebSessions:
    """Sign-in, the principal of a request's cookies, refresh and sign-out, over ``auth``.

    Every method is synchronous (database and Argon2 work): call from a worker thread."""

    def __init__(self, auth: AuthService) -> None:
        self.auth = auth
        self._lock = threading.Lock()
        # refresh-token digest → (when, tokens): one rotation per token, shared by the
        # browser's concurrent requests for a short while
        self._refreshed: dict[str, tuple[float, Tokens]] = {}
        self._client_ready = False

    # -- the first-party client --------------------------------------------------------
    def ensure_client(self) -> None:
        """Register ``huitong-web`` (public, PKCE) if it is missing: once per process."""
        if self._client_ready:
            return
        if self.auth.clients.get(WEB_CLIENT_ID) is None:
            try:
                self.auth.clients.add(ClientKind.PUBLIC, client_id=WEB_CLIENT_ID,
                                      name=WEB_CLIENT_NAME, redirect_uris=[WEB_REDIRECT],
                                      scopes=WEB_SCOPE)  # fmt: skip
            except FhirError as err:  # another worker registered it at the same moment
                if err.category is not Category.CONFLICT:
                    raise
        self._client_ready = True

    # -- signing in --------------------------------------------------------------------
    def password(self, username: str, password: str) -> SignInResult:
        return self.auth.signin.password(username, password, client_id=WEB_CLIENT_ID)

    def totp(self, ticket: str, code: str) -> SignInResult:
        return self.auth.signin.totp(ticket, code, client_id=WEB_CLIENT_ID)

    def issue(self, result: SignInResult, root: str) -> Tokens:
        """Tokens for a successful sign-in ``result``, through the authorization-code grant
        with PKCE (in process; see the module docstring). ``root`` is the request's
        ``scheme://host``; the issuer is the configured one or that root."""
        if result.outcome is not SignInOutcome.OK or result.user is None:
            raise ValueError("issue() needs a successful sign-in")
        self.ensure_client()
        issuer = self.auth.issuer(root)
        server = build_server(self.auth, issuer)
        verifier, challenge = _pkce_pair()
        state = secrets.token_urlsafe(16)
        form = [("response_type", "code"), ("client_id", WEB_CLIENT_ID),
                ("redirect_uri", WEB_REDIRECT), ("scope", WEB_SCOPE), ("state", state),
                ("code_challenge", challenge), ("code_challenge_method", "S256")]  # fmt: skip
        try:
            request = OAuthRequest("POST", issuer + "/oauth/authorize", {}, form=form)
            grant = server.get_consent_grant(request)
            who = SignedInUser(result.user, result.amr, self.auth.clock())
            answer = server.create_authorization_response(grant.request, grant_user=who,
                                                          grant=grant)  # fmt: skip
            query = parse_qs(urlsplit(answer.location() or "").query)
            if query.get("state") != [state] or not query.get("code"):
                raise _failed("The sign-in could not be completed.", "无法完成登录。")
            token_form = [("grant_type", "authorization_code"), ("code", query["code"][0]),
                          ("redirect_uri", WEB_REDIRECT), ("client_id", WEB_CLIENT_ID),
                          ("code_verifier", verifier)]  # fmt: skip
            return self._token_call(server, issuer, token_form)
        except OAuth2Error as err:  # e.g. plain http on a non-loopback host
            raise _insecure(err) from None

    def _token_call(self, server: Any, issuer: str, form: list[tuple[str, str]]) -> Tokens:
        request = OAuthRequest(
            "POST", issuer + "/oauth/token",
            {"content-type": "application/x-www-form-urlencoded"}, form=form,
        )
        answer = server.create_token_response(request)
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.status != 200 or "access_token" not in body:
            raise _failed("Your session has ended; please sign in again.",
                          "会话已结束，请重新登录。")  # fmt: skip
        return Tokens(body["access_token"], body.get("refresh_token"))

    # -- each request ------------------------------------------------------------------
    def resolve(self, access: str | None, refresh: str | None, root: str) -> SignedIn | None:
        """The signed-in person for the request's cookies, refreshing an expired access
        token; None when there is no (usable) session."""
        if not access and not refresh:
            return None
        issuer = self.auth.issuer(root)
        refreshed: Tokens | None = None
        principal = self._principal(access, issuer) if access else None
        if principal is None and refresh:
            refreshed = self._refresh(refresh, issuer)
            if refreshed is None:
                return None
            principal = self._principal(refreshed.access, issuer)
        if principal is None:
            return None
        user = self.auth.accounts.get(principal.user_id) if principal.user_id else None
        return SignedIn(principal, user, refreshed)

    def _principal(self, access: str, issuer: str) -> Principal | None:
        # imported here: huitong.server imports this package when it builds the app
        from huitong.server.authn import authenticate

        try:
            return authenticate({"authorization": f"Bearer {access}"}, self.auth, issuer=issuer)
        except FhirError as err:
            if err.category is Category.UNAUTHORIZED:
                return None  # expired, revoked, foreign: the refresh token decides
            raise

    def _refresh(self, refresh: str, issuer: str) -> Tokens | None:
        key = hashlib.sha256(refresh.encode()).hexdigest()
        with self._lock:
            now = time.monotonic()
            for k in [k for k, (at, _) in self._refreshed.items()
                      if now - at > _SHARED_REFRESH_SECONDS]:  # fmt: skip
                del self._refreshed[k]
            shared = self._refreshed.get(key)
            if shared is not None:
                return shared[1]
            try:
                tokens = self._token_call(build_server(self.auth, issuer), issuer, [
                    ("grant_type", "refresh_token"), ("refresh_token", refresh),
                    ("client_id", WEB_CLIENT_ID),
                ])
            except FhirError:
                return None
            except OAuth2Error:
                return None
            self._refreshed[key] = (now, tokens)
            return tokens

    # -- signing out -------------------------------------------------------------------
    def sign_out(self, access: str | None, refresh: str | None) -> None:
        """Revoke the session's tokens (a refresh token takes its whole family: every
        access token issued from this sign-in)."""
        tokens = self.auth.tokens
        stored = tokens.by_refresh_token(refresh) if refresh else None
        if stored is not None and stored.client_id == WEB_CLIENT_ID:
            tokens.revoke(stored, "sign-out")
        if access:
            try:
                claims, _ = self.auth.keys.verify(access, typ="at+jwt")
            except SignatureInvalid:  # not ours or malformed: nothing to revoke
                return
            jti = claims.get("jti")
            found = tokens.by_jti(jti) if isinstance(jti, str) else None
            if found is not None and found.client_id == WEB_CLIENT_ID:
                tokens.revoke(found, "sign-out")


def _insecure(err: OAuth2Error) -> FhirError:
    if err.error == "insecure_transport":
        return FhirError(Category.FORBIDDEN,
                         "Signing in needs https (or a loopback address). / "
                         "登录需要 https（或本机回环地址）。")  # fmt: skip
    return _failed(f"The sign-in could not be completed ({err.error}).",
                   f"无法完成登录（{err.error}）。")  # fmt: skip
