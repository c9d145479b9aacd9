"""The authorization server under test: the auth routes plus a protected probe route
(``/fhir/whoami``, which runs request authentication) over the real repository on SQLite and
PostgreSQL, with a steppable clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from auth_helpers import FAST_HASHER, PASSWORD, REDIRECT, Client, Ids, StepClock, probe_app

from huitong.access import AuthEvent, AuthService, AuthSettings, Role
from huitong.store import Repository


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def events() -> list[AuthEvent]:
    return []


@pytest.fixture
def service(repo: Repository, clock: StepClock, events: list[AuthEvent]) -> AuthService:
    return AuthService(repo, AuthSettings(), clock=clock, new_id=Ids(), on_event=events.append,
                       password_hasher=FAST_HASHER)


@pytest.fixture
def http(service: AuthService) -> Iterator[Client]:
    c = Client(probe_app(service))
    yield c
    c.close()


@pytest.fixture
def people(service: AuthService) -> dict[str, str]:
    """A patient (two linked records), a clinician and a public app allowed patient/user
    scopes with offline access; returns their ids."""
    patient = service.accounts.add("wang.fang", PASSWORD, Role.PATIENT,
                                   display_name="王芳", patient_ids=["p-1", "p-2"])  # fmt: skip
    doctor = service.accounts.add("li.wei", PASSWORD, Role.CLINICIAN, organization_id="org-1",
                                  practitioner_id="pr-7")  # fmt: skip
    service.clients.add(
        "public", client_id="portal-app", name="健康门户 Portal", redirect_uris=[REDIRECT],
        scopes="openid fhirUser profile launch/patient offline_access online_access "
               "patient/*.rs user/*.rs",
    )
    return {"patient": patient.id, "doctor": doctor.id}
