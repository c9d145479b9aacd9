"""Authorization code + PKCE end to end through the Starlette app: sign-in page, code,
tokens, ID token, refresh rotation and reuse detection, and the failures RFC 6749 / 7636
require (wrong redirect, PKCE mismatch, code reuse)."""

from __future__ import annotations

from typing import Any

from auth_helpers import (
    FHIR_BASE,
    PASSWORD,
    REDIRECT,
    ROOT,
    Client,
    StepClock,
    authorize_params,
    hidden_fields,
    pkce_pair,
    query_of,
    sign_in,
)
from joserfc import jwt
from joserfc.jwk import KeySet

from huitong.access import AuthEvent, AuthService

SCOPE = "openid fhirUser profile launch/patient offline_access patient/*.rs"


def _code(http: Client, scope: str = SCOPE, username: str = "wang.fang") -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    resp = sign_in(http, authorize_params("portal-app", challenge, scope, nonce="n-1"),
                   username, PASSWORD)  # fmt: skip
    assert resp.status_code == 302, resp.text
    q = query_of(resp.headers["location"])
    assert resp.headers["location"].startswith(REDIRECT)
    assert q["state"] == "st-123"
    return q["code"], verifier


def _exchange(http: Client, code: str, verifier: str, **extra: str) -> Any:
    return http.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": "portal-app", "code_verifier": verifier, **extra,
    })


def _verify(http: Client, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(http.get("/oauth/jwks").json())
    return dict(jwt.decode(token, keys, algorithms=["ES256", "RS256"]).claims)


def test_sign_in_page_is_bilingual_and_carries_the_request(
    http: Client, people: dict[str, str]
) -> None:
    _, challenge = pkce_pair()
    page = http.get("/oauth/authorize", params=authorize_params("portal-app", challenge, SCOPE))
    assert page.status_code == 200
    assert "登录" in page.text and "Sign in" in page.text and "健康门户 Portal" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    fields = dict(hidden_fields(page.text))
    assert fields["code_challenge"] == challenge and fields["client_id"] == "portal-app"


def test_patient_code_flow_gives_jwt_refresh_id_token_and_launch_patient(
    http: Client, people: dict[str, str], clock: StepClock
) -> None:
    code, verifier = _code(http)
    resp = _exchange(http, code, verifier)
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert body["patient"] == "p-1" and body["scope"] == SCOPE
    claims = _verify(http, body["access_token"])
    assert claims["iss"] == ROOT and claims["aud"] == FHIR_BASE
    assert claims["sub"] == people["patient"] and claims["role"] == "patient"
    assert claims["patient"] == "p-1" and claims["fhirUser"] == "Patient/p-1"
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]
    id_token = _verify(http, body["id_token"])
    assert id_token["aud"] == "portal-app" and id_token["nonce"] == "n-1"
    assert id_token["sub"] == people["patient"] and id_token["fhirUser"] == "Patient/p-1"
    assert id_token["name"] == "王芳" and id_token["amr"] == ["pwd"]
    assert body["refresh_token"]
    who = http.get("/fhir/whoami", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert who.status_code == 200, who.text
    assert who.json() == {
        "role": "patient", "user": people["patient"], "client": "portal-app", "org": None,
        "practitioner": None, "patients": ["p-1", "p-2"], "launch": "p-1",
        "scopes": ["patient/*.rs"],
    }


def test_clinician_token_carries_organization_and_practitioner(
    http: Client, people: dict[str, str]
) -> None:
    code, verifier = _code(http, "openid fhirUser user/*.rs", "li.wei")
    body = _exchange(http, code, verifier).json()
    assert "patient" not in body and "refresh_token" not in body  # no offline/online access
    who = http.get("/fhir/whoami", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert who.json()["role"] == "clinician"
    assert who.json()["org"] == "org-1" and who.json()["practitioner"] == "pr-7"


def test_scopes_are_narrowed_to_what_the_client_may_have(
    http: Client, people: dict[str, str]
) -> None:
    code, verifier = _code(http, "patient/Observation.rs patient/*.cruds system/*.rs")
    assert _exchange(http, code, verifier).json()["scope"] == "patient/Observation.rs"


def test_malformed_or_unallowed_scope_is_invalid_scope(
    http: Client, people: dict[str, str]
) -> None:
    for scope in ["patient/Nonsense.rs", "patient/*.cruds"]:
        _, challenge = pkce_pair()
        params = authorize_params("portal-app", challenge, scope)
        resp = http.get("/oauth/authorize", params=params)
        assert resp.status_code == 302
        assert query_of(resp.headers["location"])["error"] == "invalid_scope"


def test_wrong_redirect_uri_is_shown_not_followed(http: Client, people: dict[str, str]) -> None:
    _, challenge = pkce_pair()
    params = authorize_params("portal-app", challenge, SCOPE,
                              redirect_uri="https://evil.example.com/cb")  # fmt: skip
    resp = http.get("/oauth/authorize", params=params)
    assert resp.status_code == 400 and "location" not in resp.headers
    assert "无法登录" in resp.text and "Cannot sign in" in resp.text


def test_unknown_client_is_shown_not_followed(http: Client, people: dict[str, str]) -> None:
    _, challenge = pkce_pair()
    resp = http.get("/oauth/authorize", params=authorize_params("nobody", challenge, SCOPE))
    assert resp.status_code == 400 and "location" not in resp.headers


def test_redirect_uri_must_match_at_the_token_endpoint(
    http: Client, people: dict[str, str]
) -> None:
    code, verifier = _code(http)
    resp = _exchange(http, code, verifier, redirect_uri="https://app.example.cn/other")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_authorization_request_without_s256_pkce_is_refused(
    http: Client, people: dict[str, str]
) -> None:
    for problem in ["missing", "plain", "no-challenge"]:
        _refused_without_pkce(http, problem)


def _refused_without_pkce(http: Client, problem: str) -> None:
    verifier, challenge = pkce_pair()
    params = authorize_params("portal-app", challenge, SCOPE)
    if problem == "missing":
        del params["code_challenge_method"]
    elif problem == "plain":
        params.update(code_challenge=verifier, code_challenge_method="plain")
    else:
        del params["code_challenge"], params["code_challenge_method"]
    resp = http.get("/oauth/authorize", params=params)
    assert resp.status_code == 302
    assert query_of(resp.headers["location"])["error"] == "invalid_request"


def test_wrong_pkce_verifier_is_invalid_grant_and_burns_the_code(
    http: Client, people: dict[str, str]
) -> None:
    for verifier in ["", "x" * 43, "short"]:
        code, right = _code(http)
        resp = _exchange(http, code, verifier)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
        assert _exchange(http, code, right).json()["error"] == "invalid_grant"


def test_code_reuse_is_refused_and_revokes_the_tokens_it_gave(
    http: Client, people: dict[str, str], events: list[AuthEvent]
) -> None:
    code, verifier = _code(http)
    first = _exchange(http, code, verifier).json()
    again = _exchange(http, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    who = http.get("/fhir/whoami", headers={"Authorization": f"Bearer {first['access_token']}"})
    assert who.status_code == 401
    refresh = http.post("/oauth/token", data={"grant_type": "refresh_token",
                        "refresh_token": first["refresh_token"], "client_id": "portal-app"})
    assert refresh.json()["error"] == "invalid_grant"
    assert any(e.reason == "code-reuse" for e in events)


def test_expired_code_is_refused(http: Client, people: dict[str, str], clock: StepClock) -> None:
    code, verifier = _code(http)
    clock.advance(61)
    assert _exchange(http, code, verifier).json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_client(
    http: Client, people: dict[str, str], service: AuthService
) -> None:
    service.clients.add("public", client_id="other-app", redirect_uris=[REDIRECT],
                        scopes="patient/*.rs")  # fmt: skip
    code, verifier = _code(http)
    resp = _exchange(http, code, verifier, client_id="other-app")
    assert resp.json()["error"] == "invalid_grant"


def test_refresh_rotates_and_reuse_revokes_the_family(
    http: Client, people: dict[str, str], clock: StepClock, events: list[AuthEvent]
) -> None:
    code, verifier = _code(http)
    first = _exchange(http, code, verifier).json()
    clock.advance(400)  # the first access token has expired
    expired = http.get("/fhir/whoami",
                       headers={"Authorization": f"Bearer {first['access_token']}"})  # fmt: skip
    assert expired.status_code == 401 and "expired" in expired.json()["error"]

    def refresh(token: str) -> Any:
        return http.post("/oauth/token", data={"grant_type": "refresh_token",
                         "refresh_token": token, "client_id": "portal-app"})  # fmt: skip

    second = refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    assert second_body["patient"] == "p-1" and "id_token" in second_body
    auth = {"Authorization": f"Bearer {second_body['access_token']}"}
    assert http.get("/fhir/whoami", headers=auth).status_code == 200

    replay = refresh(first["refresh_token"])  # the rotated token, presented again
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert http.get("/fhir/whoami", headers=auth).status_code == 401  # family revoked
    assert refresh(second_body["refresh_token"]).json()["error"] == "invalid_grant"
    assert any(e.reason == "refresh-reuse" for e in events)


def test_refresh_may_narrow_but_not_widen_scope(http: Client, people: dict[str, str]) -> None:
    code, verifier = _code(http)
    first = _exchange(http, code, verifier).json()
    wider = http.post("/oauth/token", data={"grant_type": "refresh_token", "client_id":
                      "portal-app", "refresh_token": first["refresh_token"],
                      "scope": "user/*.rs"})  # fmt: skip
    assert wider.json()["error"] == "invalid_scope"


def test_cancel_sends_access_denied(http: Client, people: dict[str, str]) -> None:
    _, challenge = pkce_pair()
    page = http.get("/oauth/authorize", params=authorize_params("portal-app", challenge, SCOPE))
    resp = http.post("/oauth/authorize", data={**dict(hidden_fields(page.text)),
                                               "action": "cancel"})  # fmt: skip
    assert resp.status_code == 302
    q = query_of(resp.headers["location"])
    assert (q["error"], q["state"]) == ("access_denied", "st-123")


def test_wrong_aud_is_refused(http: Client, people: dict[str, str]) -> None:
    _, challenge = pkce_pair()
    params = authorize_params("portal-app", challenge, SCOPE, aud="https://other.example/fhir")
    resp = http.get("/oauth/authorize", params=params)
    assert query_of(resp.headers["location"])["error"] == "invalid_request"
