"""The OAuth 2 / OpenID Connect authorization server on Authlib's framework
(``authlib.oauth2``): RFC 6749 grants, PKCE (RFC 7636, S256 only), introspection (RFC 7662),
revocation (RFC 7009), private_key_jwt client authentication (RFC 7523, see
:mod:`huitong.access.smart_backend`) and OpenID Connect ID tokens.

Framework-neutral: :class:`OAuthRequest` carries what an HTTP layer read (method, URL,
headers, query and form fields) and responses come back as :class:`OAuthResponse` data, so
the Starlette routes stay thin. Authlib is synchronous, like the repository; the routes run
it in a worker thread.

Access tokens are JWTs (RFC 9068 ``typ: at+jwt``) signed with the server key, carrying
``iss``, ``sub``, ``aud`` (the FHIR base), ``exp``, ``iat``, ``jti``, ``client_id``,
``scope``, ``role``, ``org``, ``fhirUser`` and ``patient`` (SMART launch context).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core.util import create_half_hash

from huitong.access.accounts import User
from huitong.access.clients import PRIVATE_KEY_JWT, Client
from huitong.access.codes import AuthorizationCode
from huitong.access.events import AuthEvent
from huitong.access.keys import SignatureInvalid
from huitong.access.pkce import verify_pkce
from huitong.access.principal import Role
from huitong.access.scopes import ScopeError, ScopeSet, parse_scope, parse_scopes
from huitong.access.service import AuthService
from huitong.access.smart_backend import PrivateKeyJwt
from huitong.access.tokens import StoredToken

__all__ = ["ACCESS_TOKEN_TYP", "OAuthRequest", "OAuthResponse", "SignedInUser", "build_server"]

ACCESS_TOKEN_TYP = "at+jwt"
_S = 1_000_000
_USER_AUTH = ["client_secret_basic", "client_secret_post", "none"]


@dataclass(frozen=True, slots=True)
class OAuthRequest:
    """One HTTP request as the authorization server needs it. ``url`` must be the public
    URL of the endpoint (issuer + path): the token URL is the ``aud`` of client assertions."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]] = ()
    form: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True, slots=True)
class OAuthResponse:
    status: int
    body: dict[str, Any] | str
    headers: list[tuple[str, str]]

    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """The person who just signed in at the authorization endpoint (``grant_user``)."""

    user: User
    amr: tuple[str, ...]
    auth_time: int  # µs

    @property
    def id(self) -> str:
        return self.user.id


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for k, v in pairs:
            self._datalist[k].append(v)
        self._data = {k: v[0] for k, v in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, req: OAuthRequest) -> None:
        super().__init__(req.method, req.url, headers=req.headers)
        self._args = _Payload(req.query).data
        self._form = _Payload(req.form).data
        # query then form, as a browser's GET or POST of the same parameters
        self.payload = _Payload([*req.query, *req.form])

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _Pkce(CodeChallenge):  # type: ignore[misc]
    """PKCE required on every authorization request, S256 only (SMART v2, OAuth 2.1)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 - Authlib's class attribute

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge' (PKCE S256 is required).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        code: AuthorizationCode = grant.request.authorization_code
        verifier = grant.request.form.get("code_verifier") or ""
        if not verify_pkce(verifier, code.code_challenge, code.code_challenge_method):
            raise InvalidGrantError(description="Code challenge failed.")


class _Server(AuthorizationServer):  # type: ignore[misc]
    """Built per request (cheap: registrations are plain lists) because the issuer can be
    the request's own root URL."""

    def __init__(self, service: AuthService, issuer: str) -> None:
        super().__init__()
        self.service = service
        self.issuer = issuer
        self.launch_patient: str | None = None  # set by the grant before generate_token
        self.register_token_generator("default", self._generate_token)
        self.register_client_auth_method(
            PRIVATE_KEY_JWT,
            PrivateKeyJwt(service.tokens, service.clock, service.settings.assertion_max_seconds,
                          service.on_event),
        )

    # -- Authlib's hooks -------------------------------------------------------------------
    def query_client(self, client_id: str) -> Client | None:
        return self.service.clients.get(client_id)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else _Request(request)

    def create_json_request(self, request: Any) -> Any:  # pragma: no cover - unused
        raise NotImplementedError

    def handle_response(self, status: int, body: Any, headers: Any) -> OAuthResponse:
        return OAuthResponse(status, body if body is not None else "", list(headers or []))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's signals are not used: events go out through ``on_event``."""

    def validate_requested_scope(self, scope: str | None) -> None:
        try:
            parse_scopes(scope or "")
        except ScopeError as exc:
            raise InvalidScopeError(description=f"{exc.scope}: {exc.en}") from None

    def event(self, kind: str, outcome: str, reason: str, *, user_id: str | None = None,
              client_id: str | None = None, grant_type: str | None = None,
              jti: str | None = None) -> None:  # fmt: skip
        self.service.on_event(AuthEvent(kind, outcome, self.service.clock(), reason, user_id,
                                        client_id, grant_type, jti))  # fmt: skip

    # -- tokens ----------------------------------------------------------------------------
    def _generate_token(
        self, grant_type: str, client: Client, user: User | SignedInUser | None = None,
        scope: str | None = None, expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        svc, settings = self.service, self.service.settings
        if isinstance(user, SignedInUser):
            user = user.user
        now = svc.clock()
        lifetime = expires_in or settings.access_token_seconds
        scope = scope or ""
        scopes = parse_scopes(scope)
        jti = svc.new_id()
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": svc.audience(self.issuer),
            "sub": user.id if user else client.client_id,
            "iat": now // _S, "exp": now // _S + lifetime, "jti": jti,
            "client_id": client.client_id, "scope": scope,
            "role": str(user.role if user else Role.SYSTEM),
        }
        org = user.organization_id if user else client.organization_id
        if org:
            claims["org"] = org
        if user and user.fhir_user:
            claims["fhirUser"] = user.fhir_user
        if self.launch_patient:
            claims["patient"] = self.launch_patient
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": svc.keys.sign(claims, typ=ACCESS_TOKEN_TYP),
            "expires_in": lifetime, "scope": scope,
        }
        if self.launch_patient:
            token["patient"] = self.launch_patient
        record: dict[str, Any] = {
            "client_id": client.client_id, "user_id": user.id if user else None,
            "scope": scope, "launch_patient": self.launch_patient, "access_jti": jti,
            "access_expires_at": now + lifetime * _S,
        }
        if include_refresh_token and user and (scopes.offline_access or scopes.online_access):
            token["refresh_token"] = secrets.token_urlsafe(32)
            record.update(refresh_jti=svc.new_id(), refresh_token=token["refresh_token"],
                          refresh_expires_at=now + settings.refresh_token_seconds * _S)
        token["_record"] = record  # taken out again by save_token, never sent
        return token

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        record = token.pop("_record")
        if request.authorization_code is not None:
            family = request.authorization_code.family_id
        elif request.refresh_token is not None:
            family = request.refresh_token.family_id
        else:
            family = self.service.new_id()
        self.service.tokens.record(family_id=family, **record)
        self.event("token", "success", "issued", user_id=record["user_id"],
                   client_id=record["client_id"], grant_type=request.payload.grant_type,
                   jti=record["access_jti"])

    def id_token(self, token: dict[str, Any], client: Client, user: User,
                 code: AuthorizationCode | None) -> str:  # fmt: skip
        """An OpenID Connect ID token (Core §2) for ``user``, audience the client."""
        svc = self.service
        now = svc.clock() // _S
        scopes = parse_scopes(token.get("scope", ""))
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": user.id, "aud": client.client_id, "iat": now,
            "exp": now + svc.settings.id_token_seconds,
            "at_hash": create_half_hash(token["access_token"], svc.keys.alg).decode(),
        }
        if code is not None:
            claims["auth_time"] = code.get_auth_time()
            claims["amr"] = list(code.amr)
            if code.nonce:
                claims["nonce"] = code.nonce
        if scopes.fhir_user and user.fhir_user:
            claims["fhirUser"] = user.fhir_user
        if scopes.profile:
            claims["name"] = user.display_name or user.username
        return svc.keys.sign(claims)


def _server(grant: Any) -> _Server:
    return grant.server  # type: ignore[no-any-return]


def _add_id_token(grant: Any, response: Any) -> None:
    _, token, _ = response
    user = grant.request.user
    if isinstance(user, SignedInUser):
        user = user.user
    if isinstance(token, dict) and "openid" in token.get("scope", "").split() and user:
        token["id_token"] = _server(grant).id_token(
            token, grant.request.client, user, grant.request.authorization_code
        )


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = _USER_AUTH

    def __init__(self, request: Any, server: Any) -> None:
        super().__init__(request, server)
        self.register_hook("after_create_token_response", _add_id_token)

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        server = _server(self)
        aud = self.request.payload.data.get("aud")
        if aud and aud.rstrip("/") != server.service.audience(server.issuer):
            raise InvalidRequestError("'aud' is not this FHIR server.", redirect_uri=redirect_uri,
                                      state=self.request.payload.state)  # fmt: skip
        if self.request.payload.data.get("prompt") == "none":
            raise OAuth2Error(
                "Sign-in is required.", error="login_required", redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        return redirect_uri

    def save_authorization_code(self, code: str, request: Any) -> None:
        server = _server(self)
        signed_in: SignedInUser = request.user
        scopes = parse_scopes(request.scope or "")
        server.service.codes.save(
            code, client_id=request.client.client_id, user_id=signed_in.user.id,
            redirect_uri=request.payload.redirect_uri or "", scope=request.scope or "",
            code_challenge=request.payload.data["code_challenge"],
            code_challenge_method=request.payload.data["code_challenge_method"],
            nonce=request.payload.data.get("nonce"),
            launch_patient=_launch_patient(signed_in.user, scopes),
            auth_time=signed_in.auth_time, amr=signed_in.amr,
            lifetime_us=server.service.settings.code_seconds * _S,
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        server = _server(self)
        claim = server.service.codes.claim(code, client.client_id, server.service.new_id())
        if claim.reused_family:
            server.service.tokens.revoke_family(claim.reused_family, "code-reuse")
            server.event("token", "failure", "code-reuse", client_id=client.client_id,
                         grant_type="authorization_code")  # fmt: skip
        return claim.code

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing: :meth:`query_authorization_code` already marked it used."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        server = _server(self)
        user = server.service.accounts.get(authorization_code.user_id)
        if user is None or user.disabled:
            return None
        server.launch_patient = authorization_code.launch_patient
        return user


def _launch_patient(user: User, scopes: ScopeSet) -> str | None:
    """The patient of ``patient/`` scopes: a patient user's own (first linked) record.
    (A clinician's standalone launch would need a patient picker; not offered yet.)"""
    wants = scopes.launch_patient or "patient" in scopes.contexts()
    if wants and user.role is Role.PATIENT and user.patient_ids:
        return user.patient_ids[0]
    return None


class _RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = _USER_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True

    def __init__(self, request: Any, server: Any) -> None:
        super().__init__(request, server)
        self.register_hook("after_create_token_response", _add_id_token)

    def authenticate_refresh_token(self, refresh_token: str) -> StoredToken | None:
        server = _server(self)
        client: Client = self.request.client
        claim = server.service.tokens.claim_refresh(refresh_token, client.client_id)
        if claim.reused_family:
            server.event("token", "failure", "refresh-reuse", client_id=client.client_id,
                         grant_type="refresh_token")  # fmt: skip
        return claim.token

    def authenticate_user(self, refresh_token: StoredToken) -> User | None:
        server = _server(self)
        user = server.service.accounts.get(refresh_token.user_id or "")
        if user is None or user.disabled:
            return None
        server.launch_patient = refresh_token.launch_patient
        return user

    def revoke_old_credential(self, refresh_token: StoredToken) -> None:
        """Nothing: :meth:`authenticate_refresh_token` already rotated it."""


def _system_or_flag(scope: str) -> bool:
    parsed = parse_scope(scope)
    return isinstance(parsed, str) or parsed.context == "system"


class _ClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", PRIVATE_KEY_JWT]  # noqa: RUF012

    def create_token_response(self) -> tuple[int, dict[str, Any], Any]:
        # Only system/ scopes (and non-clinical ones) mean anything without a user.
        allowed = self.client.get_allowed_scope(self.request.payload.scope) or ""
        scope = " ".join(s for s in allowed.split() if _system_or_flag(s))
        if not scope:
            raise InvalidScopeError(description="No requested scope is allowed for this client.")
        token = self.generate_token(scope=scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def _find_token(server: _Server, token_string: str, hint: str | None) -> StoredToken | None:
    """An access token (a JWT we signed, found by its ``jti``) or a refresh token."""
    svc = server.service
    if token_string.count(".") == 2 and hint != "refresh_token":
        try:
            claims, _ = svc.keys.verify(token_string, typ=ACCESS_TOKEN_TYP)
        except SignatureInvalid:
            return None
        jti = claims.get("jti")
        return svc.tokens.by_jti(jti) if isinstance(jti, str) else None
    return svc.tokens.by_refresh_token(token_string)


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = [*_USER_AUTH, PRIVATE_KEY_JWT]  # noqa: RUF012

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        return _find_token(self.server, token_string, token_type_hint)

    def revoke_token(self, token: StoredToken, request: Any) -> None:
        self.server.service.tokens.revoke(token)
        self.server.event("revoke", "success", token.kind, client_id=token.client_id,
                          user_id=token.user_id, jti=token.jti)  # fmt: skip


class _Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", PRIVATE_KEY_JWT]  # noqa: RUF012

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        return _find_token(self.server, token_string, token_type_hint)

    def check_permission(self, token: StoredToken, client: Client, request: Any) -> bool:
        return client.can_introspect or token.client_id == client.client_id

    def introspect_token(self, token: StoredToken) -> dict[str, Any]:
        svc: AuthService = self.server.service
        user = svc.accounts.get(token.user_id) if token.user_id else None
        if (token.user_id and (user is None or user.disabled)) or (
            svc.clients.get(token.client_id) is None
        ):
            return {"active": False}
        body: dict[str, Any] = {
            "active": True, "scope": token.scope, "client_id": token.client_id,
            "token_type": "Bearer" if token.kind == "access" else "refresh_token",
            "sub": token.user_id or token.client_id, "iss": self.server.issuer,
            "exp": token.expires_at // _S, "iat": token.issued_at // _S, "jti": token.jti,
            "role": str(user.role) if user else str(Role.SYSTEM),
        }
        if token.kind == "access":
            body["aud"] = svc.audience(self.server.issuer)
        if user and user.fhir_user:
            body["fhirUser"] = user.fhir_user
        if token.launch_patient:
            body["patient"] = token.launch_patient
        return body


def build_server(service: AuthService, issuer: str) -> _Server:
    """The Authlib authorization server for ``issuer`` with Huitong's grants and endpoints.

    Use :meth:`~authlib.oauth2.AuthorizationServer.get_consent_grant` /
    ``create_authorization_response`` (authorization endpoint), ``create_token_response``
    and ``create_endpoint_response("introspection" | "revocation")`` with an
    :class:`OAuthRequest`; they return :class:`OAuthResponse`."""
    server = _Server(service, issuer)
    server.register_grant(_CodeGrant, [_Pkce(required=True)])
    server.register_grant(_RefreshGrant)
    server.register_grant(_ClientCredentialsGrant)
    server.register_endpoint(_Revocation)
    server.register_endpoint(_Introspection)
    return server
