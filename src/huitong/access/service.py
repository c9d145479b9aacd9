"""The authorization server's state in one object: users, clients, keys, codes, tokens and
sign-in, over one repository, with one clock and id factory.

The HTTP routes (``huitong.server.auth_routes``), request authentication
(``huitong.server.authn``) and the CLI all take an :class:`AuthService`.
"""

from __future__ import annotations

from huitong.access.accounts import AccountStore
from huitong.access.auth_settings import AuthSettings
from huitong.access.clients import ClientStore
from huitong.access.codes import CodeStore
from huitong.access.events import EventSink, discard_event
from huitong.access.facts_cache import FactsCache
from huitong.access.keys import SigningKeys
from huitong.access.passwords import PasswordHasher
from huitong.access.signin import SignIn
from huitong.access.tokens import TokenStore
from huitong.access.verified_tokens import VerifiedTokens
from huitong.clock import Clock, IdFactory, MonotonicClock, new_uuid
from huitong.store.repository import Repository

__all__ = ["ACCESS_TOKEN_LEEWAY_SECONDS", "FHIR_PATH", "AuthService"]

FHIR_PATH = "/fhir"
# How long past ``exp`` request authentication still accepts an access token (clock skew
# between the workers that sign and check them).
ACCESS_TOKEN_LEEWAY_SECONDS = 5
ACCESS_TOKEN_LEEWAY_US = ACCESS_TOKEN_LEEWAY_SECONDS * 1_000_000


class AuthService:
    """``on_event`` receives every :class:`~huitong.access.events.AuthEvent` (sign-ins,
    failures, tokens, revocations, detected reuse) for the audit log; ``password_hasher``
    sets the Argon2id parameters (default: argon2-cffi's RFC 9106 low-memory profile)."""

    def __init__(
        self, repo: Repository, settings: AuthSettings | None = None, *,
        clock: Clock | None = None, new_id: IdFactory | None = None,
        on_event: EventSink = discard_event, password_hasher: PasswordHasher | None = None,
    ) -> None:
        self.repo = repo
        self.settings = settings or AuthSettings()
        self.clock: Clock = clock or getattr(repo, "clock", None) or MonotonicClock()
        self.new_id: IdFactory = new_id or new_uuid
        self.on_event = on_event
        self.accounts = AccountStore(repo, self.clock, self.new_id, password_hasher)
        self.clients = ClientStore(repo, self.clock, self.new_id)
        self.keys = SigningKeys(repo, self.clock, self.settings.signing_alg)
        self.codes = CodeStore(repo, self.clock)
        self.tokens = TokenStore(repo, self.clock)
        self.signin = SignIn(repo, self.accounts, self.clock, self.settings, on_event)
        # clinicians' access facts kept between requests (PostgreSQL; access/facts_cache.py)
        self.facts = FactsCache()
        # access tokens whose signature verified, until they expire (server/authn.py)
        self.verified_access_tokens = VerifiedTokens(leeway_us=ACCESS_TOKEN_LEEWAY_US)

    def issuer(self, request_root: str) -> str:
        """The issuer URL: the configured one, else the root of the request
        (``scheme://host[:port]``)."""
        return (self.settings.issuer or request_root).rstrip("/")

    @staticmethod
    def audience(issuer: str) -> str:
        """The ``aud`` of access tokens: the FHIR base URL this server protects."""
        return issuer + FHIR_PATH
