"""Who may do what: SMART scopes, roles and policies, consent, credential helpers, and the
authorization server that issues the tokens.

The decision pieces are pure; the authorization server keeps its own tables through the
repository's component-SQL seam. Its HTTP routes and request authentication live in
``huitong.server`` (``auth_routes``, ``authn``); the SQL compilation of constraints in the
store:

- :mod:`~huitong.access.scopes` — SMART App Launch v2 scopes (v1 mapped);
- :mod:`~huitong.access.principal` — roles, the principal, facts about a patient;
- :mod:`~huitong.access.policy` — ``decide``: role policy intersected with scopes;
- :mod:`~huitong.access.decision`, :mod:`~huitong.access.constraints` — decisions and the
  row constraints the store applies, as data;
- :mod:`~huitong.access.consent` — FHIR R4 Consent evaluation;
- :mod:`~huitong.access.passwords`, :mod:`~huitong.access.totp`, :mod:`~huitong.access.pkce`
  — Argon2id hashes, TOTP, PKCE S256;
- the authorization server (OAuth 2 / OpenID Connect / SMART on Authlib):
  :mod:`~huitong.access.service` (``AuthService``, the one object routes and CLI take),
  :mod:`~huitong.access.accounts`, :mod:`~huitong.access.clients`,
  :mod:`~huitong.access.signin`, :mod:`~huitong.access.keys`, :mod:`~huitong.access.codes`,
  :mod:`~huitong.access.tokens`, :mod:`~huitong.access.smart_backend`,
  :mod:`~huitong.access.oauth_server`, :mod:`~huitong.access.discovery`,
  :mod:`~huitong.access.cli_commands`.
"""

from huitong.access.accounts import AccountStore, User
from huitong.access.auth_settings import AuthSettings
from huitong.access.clients import Client, ClientKind, ClientStore
from huitong.access.consent import (
    SENSITIVE_LABELS,
    ConsentActor,
    ConsentDecision,
    evaluate_consents,
)
from huitong.access.constraints import (
    AllOf,
    AnyOf,
    BreakGlassPatient,
    ConsentedPatients,
    Constraint,
    HideLabels,
    MatchesSearch,
    OrganizationPatients,
    PatientsIn,
    ReferredPatients,
    SharedPatient,
    Unrestricted,
    all_of,
    any_of,
)
from huitong.access.decision import Decision, Reason
from huitong.access.events import AuthEvent
from huitong.access.passwords import hash_password, needs_rehash, verify_password
from huitong.access.pkce import pkce_challenge, verify_pkce
from huitong.access.policy import (
    READ_INTERACTIONS,
    WRITE_INTERACTIONS,
    PolicySettings,
    decide,
    is_clinical,
)
from huitong.access.principal import (
    BreakGlass,
    PatientContext,
    Principal,
    Referral,
    Role,
    ShareGrant,
)
from huitong.access.scopes import (
    INTERACTION_PERMISSION,
    ResourceScope,
    ScopeAlternative,
    ScopeError,
    ScopeGrant,
    ScopeSet,
    parse_scope,
    parse_scopes,
)
from huitong.access.service import AuthService
from huitong.access.totp import new_totp_secret, totp_code, totp_uri, verify_totp

__all__ = [
    "INTERACTION_PERMISSION",
    "READ_INTERACTIONS",
    "SENSITIVE_LABELS",
    "WRITE_INTERACTIONS",
    "AccountStore",
    "AllOf",
    "AnyOf",
    "AuthEvent",
    "AuthService",
    "AuthSettings",
    "BreakGlass",
    "BreakGlassPatient",
    "Client",
    "ClientKind",
    "ClientStore",
    "ConsentActor",
    "ConsentDecision",
    "ConsentedPatients",
    "Constraint",
    "Decision",
    "HideLabels",
    "MatchesSearch",
    "OrganizationPatients",
    "PatientContext",
    "PatientsIn",
    "PolicySettings",
    "Principal",
    "Reason",
    "Referral",
    "ReferredPatients",
    "ResourceScope",
    "Role",
    "ScopeAlternative",
    "ScopeError",
    "ScopeGrant",
    "ScopeSet",
    "ShareGrant",
    "SharedPatient",
    "Unrestricted",
    "User",
    "all_of",
    "any_of",
    "decide",
    "evaluate_consents",
    "hash_password",
    "is_clinical",
    "needs_rehash",
    "new_totp_secret",
    "parse_scope",
    "parse_scopes",
    "pkce_challenge",
    "totp_code",
    "totp_uri",
    "verify_password",
    "verify_pkce",
    "verify_totp",
]
