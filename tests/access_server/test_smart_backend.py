"""SMART Backend Services: client_credentials with a private_key_jwt assertion (RS384 and
ES384), replayed jti, wrong aud, expired or too-long assertions, unknown kid; client secrets
for simple integrations."""

from __future__ import annotations

import pytest
from auth_helpers import (
    TOKEN_URL,
    Client,
    StepClock,
    backend_key,
    backend_token_form,
    client_assertion,
)

from huitong.access import AuthService

ALGS = ["RS384", "ES384"]


def _register(service: AuthService, alg: str) -> object:
    key, public = backend_key(alg, "k-1")
    service.clients.add("backend", client_id="lab-sync", jwks={"keys": [public]},
                        scopes="system/Observation.rs system/Patient.rs",
                        organization_id="org-lab")  # fmt: skip
    return key


def _token(http: Client, assertion: str, scope: str = "system/Observation.rs") -> dict:
    resp = http.post("/oauth/token", data=backend_token_form(assertion, scope))
    return {"status": resp.status_code, **resp.json()}


@pytest.mark.parametrize("alg", ALGS)
def test_backend_client_gets_a_system_token(
    http: Client, service: AuthService, clock: StepClock, alg: str
) -> None:
    key = _register(service, alg)
    body = _token(http, client_assertion(key, alg, "lab-sync", now_s=clock() // 1_000_000),
                  "system/Observation.rs system/*.cruds")  # fmt: skip
    assert body["status"] == 200, body
    assert body["scope"] == "system/Observation.rs" and "refresh_token" not in body
    who = http.get("/fhir/whoami", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert who.json() == {"role": "system", "user": None, "client": "lab-sync",
                          "org": "org-lab", "practitioner": None, "patients": [],
                          "launch": None, "scopes": ["system/Observation.rs"]}  # fmt: skip


@pytest.mark.parametrize("alg", ALGS)
def test_replayed_jti_is_refused(
    http: Client, service: AuthService, clock: StepClock, alg: str
) -> None:
    key = _register(service, alg)
    assertion = client_assertion(key, alg, "lab-sync", now_s=clock() // 1_000_000, jti="j-1")
    assert _token(http, assertion)["status"] == 200
    again = _token(http, assertion)
    assert again["status"] == 400 and again["error"] == "invalid_client"
    assert "used before" in again["error_description"]
    fresh = client_assertion(key, alg, "lab-sync", now_s=clock() // 1_000_000, jti="j-1")
    assert _token(http, fresh)["error"] == "invalid_client"  # same jti, new signature


BAD_ASSERTIONS = [
    ({"aud": "http://127.0.0.1:8080/fhir"}, "aud"),
    ({"aud": "https://other.example/oauth/token"}, "aud"),
    ({"exp_in": -120}, "expired"),
    ({"exp_in": 600}, "five minutes"),
    ({"kid": "k-unknown"}, "kid"),
]


@pytest.mark.parametrize("alg", ALGS)
def test_bad_assertions_are_invalid_client(
    http: Client, service: AuthService, clock: StepClock, alg: str
) -> None:
    key = _register(service, alg)
    for change, reason in BAD_ASSERTIONS:
        assertion = client_assertion(key, alg, "lab-sync", now_s=clock() // 1_000_000, **change)
        body = _token(http, assertion)
        assert body["status"] == 400 and body["error"] == "invalid_client", change
        assert reason in body["error_description"].lower(), (change, body)


def test_assertion_signed_by_another_key_is_refused(
    http: Client, service: AuthService, clock: StepClock
) -> None:
    _register(service, "ES384")
    stranger, _ = backend_key("ES384", "k-1")  # same kid, different key
    body = _token(http, client_assertion(stranger, "ES384", "lab-sync",
                                         now_s=clock() // 1_000_000))  # fmt: skip
    assert body["error"] == "invalid_client"


def test_assertion_with_rs256_is_refused(
    http: Client, service: AuthService, clock: StepClock
) -> None:
    key = _register(service, "RS384")
    from joserfc import jwt

    claims = {"iss": "lab-sync", "sub": "lab-sync", "aud": TOKEN_URL,
              "exp": clock() // 1_000_000 + 60, "jti": "x"}  # fmt: skip
    weak = jwt.encode({"alg": "RS256", "kid": "k-1"}, claims, key, algorithms=["RS256"])
    assert _token(http, weak)["error"] == "invalid_client"


def test_expired_assertion_time_is_the_server_clock(
    http: Client, service: AuthService, clock: StepClock
) -> None:
    key = _register(service, "ES384")
    assertion = client_assertion(key, "ES384", "lab-sync", now_s=clock() // 1_000_000,
                                 exp_in=60)  # fmt: skip
    clock.advance(120)
    assert _token(http, assertion)["error"] == "invalid_client"


def test_confidential_client_secret_basic_and_post(http: Client, service: AuthService) -> None:
    client, secret = service.clients.add("confidential", client_id="feed", scopes="system/*.rs")
    assert secret and client.secret_hash and secret not in repr(client)
    basic = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      auth=("feed", secret))  # fmt: skip
    assert basic.status_code == 200 and basic.json()["scope"] == "system/*.rs"
    post = http.post("/oauth/token", data={"grant_type": "client_credentials",
                                           "client_id": "feed", "client_secret": secret})
    assert post.status_code == 200
    wrong = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      auth=("feed", secret + "x"))  # fmt: skip
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")


def test_public_client_cannot_use_client_credentials(
    http: Client, service: AuthService
) -> None:
    service.clients.add("public", client_id="spa", redirect_uris=["https://a.example/cb"],
                        scopes="patient/*.rs")  # fmt: skip
    resp = http.post("/oauth/token", data={"grant_type": "client_credentials",
                                           "client_id": "spa"})
    assert resp.json()["error"] in ("invalid_client", "unauthorized_client")
