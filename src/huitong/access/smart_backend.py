"""SMART Backend Services client authentication — ``private_key_jwt`` (RFC 7523 §2.2) as
profiled by https://hl7.org/fhir/smart-app-launch/backend-services.html#authenticating-to-the-token-endpoint

A backend client sends a ``client_assertion`` JWT (``client_assertion_type`` is
``urn:ietf:params:oauth:client-assertion-type:jwt-bearer``) that must:

- be signed with RS384 or ES384 by a key registered for the client, named by the header
  ``kid`` (an unknown ``kid`` is refused: keys are never guessed);
- carry ``iss`` = ``sub`` = the client id, ``aud`` = this server's token URL, a ``jti``
  never seen before from this client (kept until the assertion expires), and an ``exp`` in
  the future but no more than five minutes away (``AuthSettings.assertion_max_seconds``;
  30 seconds of clock skew are tolerated either way).

Every refusal is ``invalid_client`` with the reason in the description (English only:
RFC 6749 §5.2 limits ``error_description`` to ASCII).
"""

from __future__ import annotations

import logging
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from huitong.access.clients import ASSERTION_ALGORITHMS, PRIVATE_KEY_JWT, Client, ClientKind
from huitong.access.events import AuthEvent, EventSink, discard_event
from huitong.access.tokens import TokenStore
from huitong.clock import Clock

__all__ = ["SKEW_SECONDS", "PrivateKeyJwt"]

log = logging.getLogger("huitong.access")

SKEW_SECONDS = 30


def _ascii(text: str) -> str:
    # RFC 6749 §5.2: error_description is printable ASCII without '"' and '\\'
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')


class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    """The ``private_key_jwt`` client authentication method for Authlib's server."""

    CLIENT_AUTH_METHOD = PRIVATE_KEY_JWT

    def __init__(self, tokens: TokenStore, clock: Clock, max_seconds: int = 300,
                 on_event: EventSink = discard_event) -> None:  # fmt: skip
        super().__init__(validate_jti=True, leeway=SKEW_SECONDS)
        self.tokens = tokens
        self.clock = clock
        self.max_seconds = max_seconds
        self.on_event = on_event

    def _refuse(self, reason: str, client_id: str | None, description: str) -> InvalidClientError:
        self.on_event(AuthEvent("token", "failure", self.clock(), reason, None, client_id,
                                "client_credentials"))  # fmt: skip
        return InvalidClientError(description=description)

    def __call__(self, query_client: Any, request: Any) -> Client | None:
        form = request.form
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != self.CLIENT_ASSERTION_TYPE or not assertion:
            return None
        header, claims = self.extract_assertion(assertion)
        client_id = claims.get("sub")
        if not isinstance(client_id, str) or claims.get("iss") != client_id:
            raise self._refuse("assertion-claims", None, "iss and sub must be the client id.")
        client: Client | None = query_client(client_id)
        if client is None or client.kind is not ClientKind.BACKEND:
            raise self._refuse("unknown-client", client_id, "Unknown backend client.")
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ASSERTION_ALGORITHMS:
            raise self._refuse("assertion-alg", client_id, "The assertion must use RS384 or ES384.")
        if not isinstance(kid, str):
            raise self._refuse("assertion-kid", client_id, "The assertion header needs a kid.")
        keys = client.public_keys()
        try:
            key = keys.get_by_kid(kid)
        except (JoseError, ValueError, KeyError):
            raise self._refuse("unknown-kid", client_id,
                               "No registered key has this kid.") from None  # fmt: skip
        try:
            token = jwt.decode(assertion, key, algorithms=[alg])
        except (JoseError, ValueError) as exc:
            log.debug("client assertion rejected: %s", type(exc).__name__)
            raise self._refuse("assertion-signature", client_id,
                               "The assertion signature does not verify.") from None  # fmt: skip
        claims = dict(token.claims)
        token_url = request.uri.split("?", 1)[0]
        now = self.clock() // 1_000_000
        registry = JWTClaimsRegistry(
            now=now, leeway=SKEW_SECONDS,
            iss={"essential": True, "value": client_id},
            sub={"essential": True, "value": client_id},
            aud={"essential": True, "value": token_url},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise self._refuse("assertion-claims", client_id,
                               "Assertion claim check failed: "
                               + _ascii(exc.description or exc.error)) from None  # fmt: skip
        exp = claims["exp"]
        if exp > now + self.max_seconds + SKEW_SECONDS:
            raise self._refuse(
                "assertion-lifetime", client_id,
                "The assertion expires more than five minutes from now.",
            )
        keep_until = (int(exp) + SKEW_SECONDS) * 1_000_000
        if not self.tokens.remember_assertion(client_id, claims["jti"], keep_until):
            raise self._refuse("assertion-replay", client_id,
                               "This assertion jti has been used before.")  # fmt: skip
        request.client = client
        return client
