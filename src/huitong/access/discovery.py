"""Discovery documents (pure): SMART configuration —
https://hl7.org/fhir/smart-app-launch/conformance.html#using-well-known — and OpenID
Provider metadata — https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata
(RFC 8414 for the OAuth fields)."""

from __future__ import annotations

from typing import Any

from huitong.access.clients import ASSERTION_ALGORITHMS, PRIVATE_KEY_JWT

__all__ = ["ENDPOINTS", "openid_configuration", "smart_configuration"]

ENDPOINTS = {
    "authorization_endpoint": "/oauth/authorize",
    "token_endpoint": "/oauth/token",
    "introspection_endpoint": "/oauth/introspect",
    "revocation_endpoint": "/oauth/revoke",
    "jwks_uri": "/oauth/jwks",
}
_AUTH_METHODS = ["client_secret_basic", "client_secret_post", PRIVATE_KEY_JWT, "none"]
_GRANTS = ["authorization_code", "refresh_token", "client_credentials"]
_SCOPES = [
    "openid", "fhirUser", "profile", "launch/patient", "offline_access", "online_access",
    "patient/*.cruds", "user/*.cruds", "system/*.cruds",
    "patient/*.read", "user/*.read", "system/*.read",
]
_CAPABILITIES = [
    "launch-standalone", "client-public", "client-confidential-symmetric",
    "client-confidential-asymmetric", "context-standalone-patient", "sso-openid-connect",
    "permission-offline", "permission-online", "permission-patient", "permission-user",
    "permission-v1", "permission-v2",
]


def _endpoints(issuer: str) -> dict[str, str]:
    return {name: issuer + path for name, path in ENDPOINTS.items()}


def smart_configuration(issuer: str, signing_alg: str) -> dict[str, Any]:
    """``/.well-known/smart-configuration`` for the FHIR base under ``issuer``."""
    return {
        "issuer": issuer,
        **_endpoints(issuer),
        "grant_types_supported": _GRANTS,
        "token_endpoint_auth_methods_supported": _AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": _SCOPES,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": _CAPABILITIES,
        "id_token_signing_alg_values_supported": [signing_alg],
    }


def openid_configuration(issuer: str, signing_alg: str) -> dict[str, Any]:
    """``/.well-known/openid-configuration``."""
    return {
        "issuer": issuer,
        **_endpoints(issuer),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": _GRANTS,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [signing_alg],
        "token_endpoint_auth_methods_supported": _AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint_auth_methods_supported": _AUTH_METHODS[:3],
        "revocation_endpoint_auth_methods_supported": _AUTH_METHODS,
        "scopes_supported": ["openid", "fhirUser", "profile", "offline_access",
                             "online_access"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr",
                             "at_hash", "fhirUser", "name", "role"],
        "code_challenge_methods_supported": ["S256"],
        "ui_locales_supported": ["zh-CN", "en"],
    }
