"""Helpers for the authorization-server tests: a fixed, steppable clock, a synchronous
client over httpx's ASGI transport, the browser steps of the authorization-code flow, and
client-assertion signing for SMART backend clients."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from huitong.access import AuthService
from huitong.access.passwords import PasswordHasher
from huitong.fhir.errors import FhirError
from huitong.server.auth_routes import auth_routes
from huitong.server.authn import authenticate_request, www_authenticate

ROOT = "http://127.0.0.1:8080"
TOKEN_URL = ROOT + "/oauth/token"
FHIR_BASE = ROOT + "/fhir"
REDIRECT = "https://app.example.cn/callback"
T0 = 1_800_000_000_000_000  # 2027-01-15T08:00:00Z in µs


class StepClock:
    """Microseconds, fixed until moved."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000)


class Ids:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"id-{self.n:06d}"


class Client:
    """Synchronous requests against the ASGI app (no network, no redirects followed)."""

    def __init__(self, app: Any, base_url: str = ROOT) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url=base_url, follow_redirects=False)

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hidden_fields(html: str) -> list[tuple[str, str]]:
    return [(unescape(n), unescape(v)) for n, v in
            re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', html)]


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def authorize_params(client_id: str, challenge: str, scope: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "scope": scope, "state": "st-123", "code_challenge": challenge,
        "code_challenge_method": "S256", "aud": FHIR_BASE, **extra,
    }


def sign_in(http: Client, params: dict[str, str], username: str, password: str,
            totp: Any = None) -> httpx.Response:  # fmt: skip
    """GET the sign-in page, post the password (and the TOTP code from ``totp()`` if the
    page asks); the last response (a redirect on success)."""
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    form = [*hidden_fields(page.text), ("username", username), ("password", password),
            ("action", "signin")]  # fmt: skip
    resp = http.post("/oauth/authorize", data=dict(form))
    if resp.status_code == 200 and 'name="ticket"' in resp.text and totp is not None:
        fields = dict(hidden_fields(resp.text))
        fields.update(totp=totp(), action="signin")
        resp = http.post("/oauth/authorize", data=fields)
    return resp


def backend_key(alg: str, kid: str) -> tuple[Key, dict[str, Any]]:
    """A private key and the public JWK to register (with ``kid``)."""
    key: Key = (RSAKey.generate_key(2048, private=True, parameters={"kid": kid})
                if alg == "RS384"
                else ECKey.generate_key("P-384", private=True, parameters={"kid": kid}))  # fmt: skip
    public = {**key.as_dict(private=False), "kid": kid}
    return key, public


def client_assertion(key: Key, alg: str, client_id: str, *, now_s: int, kid: str | None = None,
                     aud: str = TOKEN_URL, exp_in: int = 240, jti: str | None = None,
                     ) -> str:  # fmt: skip
    header = {"alg": alg, "typ": "JWT", "kid": kid if kid is not None else key.kid}
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now_s + exp_in,
              "jti": jti or secrets.token_hex(16)}  # fmt: skip
    return jwt.encode(header, claims, key, algorithms=[alg])


def backend_token_form(assertion: str, scope: str = "system/*.rs") -> dict[str, str]:
    return {
        "grant_type": "client_credentials", "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


PASSWORD = "correct horse battery"
# Argon2id with the smallest cost: the production parameters take ~1 s per hash here.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def probe_app(service: AuthService) -> Starlette:
    async def whoami(request: Request) -> Response:
        try:
            principal = await run_in_threadpool(authenticate_request, request, service)
        except FhirError as err:
            return JSONResponse({"error": err.message}, err.status,
                                {"WWW-Authenticate": www_authenticate(err)})  # fmt: skip
        if principal is None:
            return JSONResponse({"error": "anonymous"}, 401,
                                {"WWW-Authenticate": www_authenticate()})  # fmt: skip
        return JSONResponse({
            "role": str(principal.role), "user": principal.user_id,
            "client": principal.client_id, "org": principal.organization_id,
            "practitioner": principal.practitioner_id,
            "patients": sorted(principal.patient_ids), "launch": principal.launch_patient,
            "scopes": [s.text for s in principal.scopes.resources] if principal.scopes else None,
        })

    return Starlette(routes=[*auth_routes(service), Route("/fhir/whoami", whoami)])
