"""Request authentication: a bearer access token → the :class:`~huitong.access.Principal`
making the request (RFC 6750 §2.1, tokens per RFC 9068).

A token is accepted only if it is a JWT of type ``at+jwt`` signed by a current or previous
server key with the algorithm that key is registered for (so ``alg: none`` or a forged
header never verifies), ``iss`` is this server, ``aud`` its FHIR base, ``exp`` has not
passed, and its ``jti`` is recorded and not revoked, its client still registered and its
user not disabled. The principal's patient links are read from the user record at each
request, so relinking and disabling act at once. Only the signature check of a token is
kept, until the token expires (:mod:`huitong.access.verified_tokens`); everything else is
checked at every request.

Failures raise ``FhirError(Category.UNAUTHORIZED)`` with a bilingual message; the response
should carry :func:`www_authenticate` (RFC 6750 §3).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import partial

from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwt import JWTClaimsRegistry
from starlette.requests import Request

from huitong.access.keys import SignatureInvalid
from huitong.access.oauth_server import ACCESS_TOKEN_TYP
from huitong.access.principal import Principal, Role
from huitong.access.request_context import load_request_context
from huitong.access.scopes import ScopeError, parse_scopes
from huitong.access.service import ACCESS_TOKEN_LEEWAY_SECONDS, AuthService
from huitong.fhir.errors import Category, FhirError

__all__ = ["authenticate", "authenticate_request", "www_authenticate"]

_LEEWAY_SECONDS = ACCESS_TOKEN_LEEWAY_SECONDS


def _unauthorized(en: str, zh: str, code: str = "invalid_token") -> FhirError:
    err = FhirError(Category.UNAUTHORIZED, f"{en} / {zh}")
    err.oauth_error = code  # type: ignore[attr-defined]
    return err


def www_authenticate(err: FhirError | None = None) -> str:
    """The ``WWW-Authenticate`` header value for a 401 (RFC 6750 §3)."""
    code = getattr(err, "oauth_error", None)
    return 'Bearer realm="huitong"' + (f', error="{code}"' if code else "")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def authenticate(headers: Mapping[str, str], service: AuthService, *, issuer: str,
                 ) -> Principal | None:  # fmt: skip
    """The principal for the request's ``Authorization: Bearer`` token; None when the
    request carries no ``Authorization`` header (the caller decides whether anonymous is
    allowed); ``FhirError(UNAUTHORIZED)`` for a malformed, forged, expired, revoked or
    foreign token. ``issuer`` is :meth:`AuthService.issuer` for this request."""
    value = _header(headers, "authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("The Authorization header must be 'Bearer <token>'.",
                            "Authorization 头须为“Bearer <令牌>”。", "invalid_request")  # fmt: skip
    now_us = service.clock()
    try:
        # the signature is checked once per token text and kept until the token expires
        # (access/verified_tokens.py); everything below still runs at every request
        claims, _ = service.verified_access_tokens.verify(
            token, now_us, partial(service.keys.verify, typ=ACCESS_TOKEN_TYP), service.keys.knows
        )
    except SignatureInvalid:
        raise _unauthorized("The access token is not valid.", "访问令牌无效。") from None
    now = now_us // 1_000_000
    registry = JWTClaimsRegistry(
        now=now, leeway=_LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": service.audience(issuer)},
        exp={"essential": True}, sub={"essential": True}, jti={"essential": True},
        role={"essential": True}, client_id={"essential": True},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise _unauthorized("The access token has expired.", "访问令牌已过期。") from None
    except JoseError:
        raise _unauthorized("The access token was not issued for this server.",
                            "访问令牌不是为本服务签发的。") from None  # fmt: skip
    try:
        role = Role(claims["role"])
        scopes = parse_scopes(str(claims.get("scope", "")))
    except (ValueError, ScopeError):
        raise _unauthorized("The access token is not valid.", "访问令牌无效。") from None
    fhir_user = str(claims.get("fhirUser") or "")
    practitioner = fhir_user.removeprefix("Practitioner/") if fhir_user.startswith(
        "Practitioner/") else None  # fmt: skip
    started = time.monotonic()
    clinician = role is Role.CLINICIAN
    key = (claims.get("org"), practitioner)
    kept = service.facts.to_check(key) if clinician else None
    # One statement: the token's state and, for a clinician, their grants and break-glass
    # sessions and whether their kept access facts are still current — all read at every
    # request, so a grant, an expiry, a withdrawal or a revocation acts at once.
    found = load_request_context(
        service.repo, claims["jti"], clinician=claims["sub"] if clinician else None,
        now=service.clock(), check=None if kept is None else (kept[1], kept[2]),
    )  # fmt: skip
    context = found.token
    if context is None or context.revoked or not context.client_present:
        raise _unauthorized("The access token has been revoked.", "访问令牌已被撤销。")
    if context.user_disabled:
        raise _unauthorized("The account is disabled.", "该账户已停用。")
    checked = None
    if kept is not None:
        if found.changed:
            service.facts.discard(key, kept[0])
        else:
            checked = kept[0]
    return Principal(
        break_glass=found.break_glass,
        share_grants=found.share_grants,
        facts=service.facts.ticket(key, started, checked) if clinician else None,
        role=role,
        user_id=None if role is Role.SYSTEM else claims["sub"],
        client_id=claims["client_id"],
        organization_id=claims.get("org"),
        practitioner_id=practitioner,
        patient_ids=frozenset(context.patient_ids) if role is Role.PATIENT else frozenset(),
        scopes=scopes,
        launch_patient=claims.get("patient"),
    )


def authenticate_request(request: Request, service: AuthService) -> Principal | None:
    """:func:`authenticate` for a Starlette request (issuer derived as the routes do).
    Synchronous (it reads the database): call it from a worker thread."""
    issuer = service.issuer(f"{request.url.scheme}://{request.url.netloc}")
    return authenticate(request.headers, service, issuer=issuer)
