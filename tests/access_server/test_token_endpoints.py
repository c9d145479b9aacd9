"""Introspection (RFC 7662), revocation (RFC 7009), the well-known documents, the JWKS and
key rotation, and request authentication against forged, foreign, expired and revoked
tokens."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from auth_helpers import FHIR_BASE, ROOT, Client, StepClock
from joserfc import jwt
from joserfc.jwk import ECKey

from huitong.access import AuthService
from huitong.access.oauth_server import ACCESS_TOKEN_TYP


@pytest.fixture
def feed(service: AuthService) -> str:
    _, secret = service.clients.add("confidential", client_id="feed", scopes="system/*.rs")
    assert secret is not None
    return secret


def _token(http: Client, secret: str, client_id: str = "feed") -> str:
    resp = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                     auth=(client_id, secret))  # fmt: skip
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def _who(http: Client, token: str) -> Any:
    return http.get("/fhir/whoami", headers={"Authorization": f"Bearer {token}"})


def test_introspection_of_own_token_then_revocation(http: Client, feed: str) -> None:
    token = _token(http, feed)
    info = http.post("/oauth/introspect", data={"token": token}, auth=("feed", feed)).json()
    assert info["active"] is True and info["client_id"] == "feed"
    assert info["scope"] == "system/*.rs" and info["role"] == "system"
    assert info["iss"] == ROOT and info["aud"] == FHIR_BASE
    assert http.post("/oauth/revoke", data={"token": token}, auth=("feed", feed)).status_code == 200
    assert http.post("/oauth/introspect", data={"token": token},
                     auth=("feed", feed)).json() == {"active": False}  # fmt: skip
    who = _who(http, token)
    assert who.status_code == 401 and "revoked" in who.json()["error"]


def test_introspection_needs_permission_for_other_clients_tokens(
    http: Client, service: AuthService, feed: str
) -> None:
    token = _token(http, feed)
    _, other = service.clients.add("confidential", client_id="other", scopes="system/*.rs")
    _, rs = service.clients.add("confidential", client_id="rs", scopes="system/*.rs",
                                can_introspect=True)  # fmt: skip
    assert other and rs
    denied = http.post("/oauth/introspect", data={"token": token}, auth=("other", other))
    assert denied.json() == {"active": False}
    assert http.post("/oauth/introspect", data={"token": token},
                     auth=("rs", rs)).json()["active"] is True  # fmt: skip
    anonymous = http.post("/oauth/introspect", data={"token": token})
    assert anonymous.status_code == 401


def test_unknown_or_garbage_token_is_inactive(http: Client, feed: str) -> None:
    for token in ("nonsense", "a.b.c", "x" * 50):
        body = http.post("/oauth/introspect", data={"token": token}, auth=("feed", feed)).json()
        assert body == {"active": False}
    assert http.post("/oauth/revoke", data={"token": "nonsense"},
                     auth=("feed", feed)).status_code == 200  # RFC 7009 §2.2  # fmt: skip


def test_removed_client_tokens_stop_working(http: Client, service: AuthService, feed: str
                                            ) -> None:  # fmt: skip
    token = _token(http, feed)
    assert _who(http, token).status_code == 200
    service.clients.remove("feed")
    assert _who(http, token).status_code == 401


def test_well_known_documents(http: Client) -> None:
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        smart = http.get(path).json()
        assert smart["issuer"] == ROOT
        assert smart["token_endpoint"] == ROOT + "/oauth/token"
        assert smart["authorization_endpoint"] == ROOT + "/oauth/authorize"
        assert smart["jwks_uri"] == ROOT + "/oauth/jwks"
        assert "private_key_jwt" in smart["token_endpoint_auth_methods_supported"]
        assert smart["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
        assert smart["code_challenge_methods_supported"] == ["S256"]
        assert {"launch-standalone", "client-confidential-asymmetric",
                "permission-v2"} <= set(smart["capabilities"])  # fmt: skip
    oidc = http.get("/.well-known/openid-configuration").json()
    assert oidc["issuer"] == ROOT and oidc["response_types_supported"] == ["code"]
    assert oidc["id_token_signing_alg_values_supported"] == ["ES256"]
    assert oidc["subject_types_supported"] == ["public"]
    for key in ("introspection_endpoint", "revocation_endpoint", "jwks_uri"):
        assert oidc[key].startswith(ROOT + "/oauth/")


def test_rotation_keeps_the_previous_key_verifying(
    http: Client, service: AuthService, feed: str
) -> None:
    old = _token(http, feed)
    first = {k["kid"] for k in http.get("/oauth/jwks").json()["keys"]}
    service.keys.rotate()
    keys = http.get("/oauth/jwks").json()["keys"]
    assert first < {k["kid"] for k in keys} and len(keys) == 2
    assert all("d" not in k for k in keys)  # public keys only
    assert _who(http, old).status_code == 200
    assert _who(http, _token(http, feed)).status_code == 200
    service.keys.rotate()  # the first key is retired now
    assert _who(http, old).status_code == 401


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


def _tampered(service: AuthService, token: str, **changes: Any) -> str:
    """Re-sign the token's claims with ``changes`` by the real server key."""
    claims, _ = service.keys.verify(token)
    return service.keys.sign({**claims, **changes}, typ=ACCESS_TOKEN_TYP)


ATTACKS = ["alg-none", "other-key", "wrong-iss", "wrong-aud", "id-token-typ", "unrecorded-jti",
           "no-bearer", "empty"]


def test_forged_and_foreign_tokens_are_401(http: Client, service: AuthService, feed: str
                                           ) -> None:  # fmt: skip
    token = _token(http, feed)
    for attack in ATTACKS:
        _attack(http, service, token, attack)


def _attack(http: Client, service: AuthService, token: str, attack: str) -> None:
    _, payload, _ = token.split(".")
    claims, kid = service.keys.verify(token)
    auth = f"Bearer {token}"
    if attack == "alg-none":
        auth = f"Bearer {_b64({'alg': 'none', 'typ': ACCESS_TOKEN_TYP, 'kid': kid})}.{payload}."
    elif attack == "other-key":
        key = ECKey.generate_key("P-256", private=True)
        forged = jwt.encode({"alg": "ES256", "kid": kid, "typ": ACCESS_TOKEN_TYP}, claims, key)
        auth = f"Bearer {forged}"
    elif attack == "wrong-iss":
        auth = f"Bearer {_tampered(service, token, iss='https://evil.example')}"
    elif attack == "wrong-aud":
        auth = f"Bearer {_tampered(service, token, aud='https://other.example/fhir')}"
    elif attack == "id-token-typ":
        auth = f"Bearer {service.keys.sign(claims)}"  # typ JWT, as ID tokens are
    elif attack == "unrecorded-jti":
        auth = f"Bearer {_tampered(service, token, jti='never-issued')}"
    elif attack == "no-bearer":
        auth = f"Basic {token}"
    else:
        auth = "Bearer "
    resp = http.get("/fhir/whoami", headers={"Authorization": auth})
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"].startswith('Bearer realm="huitong"')
    assert " / " in resp.json()["error"]  # English / 中文


def test_expired_token_is_401(http: Client, feed: str, clock: StepClock) -> None:
    token = _token(http, feed)
    clock.advance(300 + 6)
    resp = _who(http, token)
    assert resp.status_code == 401 and "已过期" in resp.json()["error"]


def test_no_authorization_header_is_anonymous(http: Client) -> None:
    assert http.get("/fhir/whoami").json() == {"error": "anonymous"}


def test_configured_issuer_is_used_for_tokens(repo: Any, clock: StepClock) -> None:
    from auth_helpers import FAST_HASHER, Ids, probe_app

    from huitong.access import AuthSettings

    service = AuthService(repo, AuthSettings(issuer="https://hie.example.cn/"), clock=clock,
                          new_id=Ids(), password_hasher=FAST_HASHER)  # fmt: skip
    _, secret = service.clients.add("confidential", client_id="feed", scopes="system/*.rs")
    http = Client(probe_app(service), base_url="http://hie.internal")
    try:
        token = _token(http, str(secret))
        claims, _ = service.keys.verify(token)
        assert claims["iss"] == "https://hie.example.cn"
        assert claims["aud"] == "https://hie.example.cn/fhir"
        assert _who(http, token).status_code == 200
        smart = http.get("/.well-known/smart-configuration").json()
        assert smart["token_endpoint"] == "https://hie.example.cn/oauth/token"
    finally:
        http.close()


def test_plain_http_to_a_non_loopback_issuer_is_refused(repo: Any, clock: StepClock) -> None:
    from auth_helpers import FAST_HASHER, Ids, probe_app

    service = AuthService(repo, clock=clock, new_id=Ids(), password_hasher=FAST_HASHER)
    _, secret = service.clients.add("confidential", client_id="feed", scopes="system/*.rs")
    http = Client(probe_app(service), base_url="http://hie.example.cn")
    try:
        resp = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                         auth=("feed", str(secret)))  # fmt: skip
        assert resp.status_code == 400 and resp.json()["error"] == "insecure_transport"
    finally:
        http.close()


def test_token_endpoint_wants_a_form(http: Client, feed: str) -> None:
    resp = http.post("/oauth/token", json={"grant_type": "client_credentials"},
                     auth=("feed", feed))  # fmt: skip
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    big = http.post("/oauth/token", data={"grant_type": "client_credentials", "x": "y" * 70_000},
                    auth=("feed", feed))  # fmt: skip
    assert big.status_code == 400
