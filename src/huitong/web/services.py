"""What the web pages call: the same services the API calls, never the database.

The composition root (``huitong.server.create_app``) builds one :class:`WebServices` and
passes it to :func:`huitong.web.web_routes`. Services that have not landed yet (identity,
access, quality, audit) are ``None``; the pages that need them say so plainly instead of
showing anything made up.

Patient search goes through a :class:`PatientFinder`. Until the identity service provides
one (pinyin, homophones, linked source records), :class:`FhirPatientFinder` answers with
plain FHIR searches — https://hl7.org/fhir/R4/patient.html#search.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from huitong.access.policy import PolicySettings
from huitong.access.service import AuthService
from huitong.clock import Clock, MonotonicClock
from huitong.fhir.errors import FhirError
from huitong.fhir.search.parse import parse_search
from huitong.ingest.service import IngestService
from huitong.store.repository import Repository, StoredResource
from huitong.web.patient_search import SearchKind, classify, patient_queries
from huitong.web.session import WebSessions

__all__ = ["FhirPatientFinder", "PatientFinder", "WebServices"]


class PatientFinder(Protocol):
    """Finds patients from what a clinician types (a name, an ID number, a phone…)."""

    def find_patients(self, text: str, kind: SearchKind, *, limit: int) -> list[StoredResource]:
        """Patients matching ``text`` read as ``kind`` (``SearchKind.AUTO`` guesses), best
        first, at most ``limit``. Raises ``FhirError(INVALID)`` for input it cannot use."""
        ...


@dataclass(frozen=True, slots=True)
class FhirPatientFinder:
    """Patient search through the repository's FHIR search: ``name``, ``identifier`` and
    ``telecom``. No pinyin: that needs the identity service's normalisation."""

    repo: Repository

    def find_patients(self, text: str, kind: SearchKind, *, limit: int) -> list[StoredResource]:
        found: dict[str, StoredResource] = {}
        for params in patient_queries(text, kind):
            query = parse_search("Patient", [*params, ("_count", str(limit))])
            for match in self.repo.search(query).matches:
                found.setdefault(match.id, match)
        return list(found.values())[:limit]


@dataclass(frozen=True, slots=True)
class IdentityPatientFinder:
    """The FHIR search, plus the identity service's name search for names: characters
    (simplified or traditional), pinyin in either order, near-homophones. The identity
    service only proposes ids; each is read through ``repo`` (the signed-in person's view),
    so a patient the clinician may not see is simply not found."""

    repo: Repository
    identity: Any

    def find_patients(self, text: str, kind: SearchKind, *, limit: int) -> list[StoredResource]:
        found = {r.id: r for r in FhirPatientFinder(self.repo).find_patients(text, kind,
                                                                              limit=limit)}
        if (kind if kind is not SearchKind.AUTO else classify(text.strip())) is SearchKind.NAME:
            for hit in self.identity.search(text, limit=limit):
                ids = list(hit.get("sources", ()))
                if hit.get("golden"):
                    ids.insert(0, hit["golden"].removeprefix("Patient/"))
                for pid in ids:
                    if pid in found or len(found) >= limit:
                        continue
                    try:
                        stored = self.repo.read("Patient", pid)
                    except FhirError:  # hidden from this person, gone or deleted
                        continue
                    if stored is not None and not stored.deleted:
                        found[pid] = stored
        return list(found.values())[:limit]


@dataclass
class WebServices:
    """Everything the pages use. ``secret`` keys the CSRF tokens (give every worker the
    same one when several run); it defaults to a fresh random key per process."""

    repo: Repository
    ingest: IngestService | None = None
    clock: Clock = field(default_factory=MonotonicClock)
    finder: PatientFinder | None = None
    # Services still to land; each page that needs one checks for None.
    identity: Any | None = None
    access: Any | None = None
    quality: Any | None = None
    audit: Any | None = None
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    # The authorization server: when given (authentication on), every page but the home
    # and sign-in pages needs a signed-in person and reads as that person.
    auth: AuthService | None = None
    # The consent helper's services (share codes, break-glass), once they exist.
    share_codes: Any | None = None
    break_glass: Any | None = None
    # The consent services themselves (``server.consent_api.ConsentServices``): the portal
    # builds patients' Consent grants with their injected clock and ids.
    consent: Any | None = None
    # The region's policy settings (consent default, sensitive labels), as the API uses.
    policy: PolicySettings = field(default_factory=PolicySettings)
    sessions: WebSessions | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.finder is None:
            self.finder = (FhirPatientFinder(self.repo) if self.identity is None
                           else IdentityPatientFinder(self.repo, self.identity))
        if self.auth is not None:
            self.sessions = WebSessions(self.auth)
            if self.access is None:
                self.access = self.auth

    def finder_for(self, repo: Repository) -> PatientFinder:
        """The patient finder reading through ``repo`` (a principal's view when
        authentication is on, so search results are what that person may see)."""
        if repo is self.repo and self.finder is not None:
            return self.finder
        if self.identity is not None:
            return IdentityPatientFinder(repo, self.identity)
        return FhirPatientFinder(repo)
