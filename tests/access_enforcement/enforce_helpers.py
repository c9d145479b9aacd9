"""Shared pieces of the authorization-enforcement tests: a small two-organization region
seeded into the real repository, the real app with authentication on, and access tokens
minted the way the authorization server mints them (signed by its key, recorded in its
token store) for users and clients of every role."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from huitong.access import AuthService, AuthSettings, Role
from huitong.access.oauth_server import ACCESS_TOKEN_TYP
from huitong.access.passwords import PasswordHasher
from huitong.config import Settings
from huitong.server.app import create_app
from huitong.store.repository import Repository

ROOT = "http://127.0.0.1:8080"
T0 = 1_800_000_000_000_000  # 2027-01-15T08:00:00Z in µs
LOINC = "http://loinc.org"
HEART_RATE = "8867-4"
# Argon2id with the smallest cost: the production parameters take ~1 s per hash here.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

# Which patients each clinician reaches, and why (see seed()):
#   pa1 registered at org-a; pa2 seen at org-a (Encounter); pb2 consented to org-a;
#   pb5 referred to pr-a. pb3's consent is revoked, pb4's expired, pb6's covers Condition only.
ORG_A_SEES = frozenset({"pa1", "pa2", "pb2", "pb5"})
ORG_B_SEES = frozenset({"pb1", "pb2", "pb3", "pb4", "pb5", "pb6"})
ALL_PATIENTS = frozenset({"pa1", "pa2", "pb1", "pb2", "pb3", "pb4", "pb5", "pb6"})


class FixedClock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def _ref(ref: str) -> dict[str, str]:
    return {"reference": ref}


def _patient(pid: str, org: str | None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "resourceType": "Patient", "id": pid,
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": f"ID-{pid}"}],
        "name": [{"family": "Zhang", "given": [pid]}], "gender": "female",
        "birthDate": "1980-05-01",
    }
    if org:
        p["managingOrganization"] = _ref(f"Organization/{org}")
    return p


def _observation(oid: str, pid: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "id": oid, "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": HEART_RATE}]},
        "subject": _ref(f"Patient/{pid}"), "effectiveDateTime": "2026-12-01",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org",
                          "code": "/min"},
        **extra,
    }


def _consent(cid: str, pid: str, org: str, *, status: str = "active",
             period: tuple[str, str] = ("2026-01-01", "2028-01-01"),
             classes: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    provision: dict[str, Any] = {
        "type": "permit", "period": {"start": period[0], "end": period[1]},
        "actor": [{"role": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP"}]}, "reference": _ref(f"Organization/{org}")}],
    }
    if classes:
        provision["class"] = [{"system": "http://hl7.org/fhir/resource-types", "code": c}
                              for c in classes]
    return {
        "resourceType": "Consent", "id": cid, "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": _ref(f"Patient/{pid}"),
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                   "code": "OPTIN"}]},
        "provision": provision,
    }


def seed(repo: Repository) -> None:
    """Two organizations, eight patients, one heart-rate Observation each (``obs-<pid>``),
    an HIV-labelled one for pa1, and the relationships listed at :data:`ORG_A_SEES`.
    ``obs-pa1`` lists ``obs-pb1`` as a member (an ``_include`` that must not leak)."""
    resources: list[dict[str, Any]] = [
        {"resourceType": "Organization", "id": "org-a", "name": "医院甲 Hospital A"},
        {"resourceType": "Organization", "id": "org-b", "name": "医院乙 Hospital B"},
        {"resourceType": "Practitioner", "id": "pr-a", "name": [{"family": "Li"}]},
        {"resourceType": "Practitioner", "id": "pr-b", "name": [{"family": "Wang"}]},
        _patient("pa1", "org-a"), _patient("pa2", None),
        *(_patient(p, "org-b") for p in ("pb1", "pb2", "pb3", "pb4", "pb5", "pb6")),
        {"resourceType": "Encounter", "id": "enc-pa2", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                   "code": "AMB"},
         "subject": _ref("Patient/pa2"), "serviceProvider": _ref("Organization/org-a")},
        _consent("cons-pb2", "pb2", "org-a"),
        _consent("cons-pb3", "pb3", "org-a", status="inactive"),
        _consent("cons-pb4", "pb4", "org-a", period=("2020-01-01", "2021-01-01")),
        _consent("cons-pb6", "pb6", "org-a", classes=("Condition",)),
        {"resourceType": "ServiceRequest", "id": "ref-pb5", "status": "active",
         "intent": "order", "subject": _ref("Patient/pb5"),
         "performer": [_ref("Practitioner/pr-a")]},
        *(_observation(f"obs-{p}", p) for p in sorted(ALL_PATIENTS - {"pa1"})),
        _observation("obs-pa1", "pa1", hasMember=[_ref("Observation/obs-pb1")]),
        _observation("obs-hiv-pa1", "pa1", meta={"security": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]}),
    ]
    with repo.transaction() as tx:
        for r in resources:
            body = {k: v for k, v in r.items() if k != "id"}
            tx.update({**body, "id": r["id"]})


class Region:
    """The seeded repository behind the real app (authentication on, MPI off), and tokens."""

    def __init__(self, repo: Repository) -> None:
        seed(repo)
        self.repo = repo
        self.clock = FixedClock()
        settings = Settings.from_env({}, database_url="unused", mpi="off", auth="on",
                                     base_url=f"{ROOT}/fhir")  # fmt: skip
        self.app = create_app(repo, settings, clock=self.clock)
        self.service = AuthService(repo, AuthSettings(), clock=self.clock,
                                   password_hasher=FAST_HASHER)  # fmt: skip
        self.service.clients.add("confidential", client_id="ehr", name="EHR",
                                 redirect_uris=["https://ehr.example.cn/cb"],
                                 scopes="user/*.cruds user/*.rs")  # fmt: skip
        self._n = 0
        self._loop = asyncio.new_event_loop()
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                       base_url=ROOT)  # fmt: skip

    def close(self) -> None:
        self._loop.run_until_complete(self._http.aclose())
        self._loop.close()

    def _sign(self, claims: dict[str, Any], user_id: str | None, client_id: str,
              scope: str) -> str:  # fmt: skip
        self._n += 1
        jti = f"jti-{self._n}"
        now = self.clock() // 1_000_000
        self.service.tokens.record(
            family_id=jti, client_id=client_id, user_id=user_id, scope=scope,
            launch_patient=None, access_jti=jti, access_expires_at=self.clock() + 3_600_000_000,
        )
        full = {"iss": ROOT, "aud": f"{ROOT}/fhir", "iat": now, "exp": now + 3600, "jti": jti,
                "client_id": client_id, "scope": scope, **claims}  # fmt: skip
        return self.service.keys.sign(full, typ=ACCESS_TOKEN_TYP)

    def user_token(self, role: Role, *, org: str | None = None, practitioner: str | None = None,
                   patient_ids: tuple[str, ...] = (), scope: str = "user/*.cruds") -> str:  # fmt: skip
        self._n += 1
        user = self.service.accounts.add(
            f"user{self._n}", "correct horse battery", role, organization_id=org,
            practitioner_id=practitioner, patient_ids=list(patient_ids),
        )
        claims: dict[str, Any] = {"sub": user.id, "role": str(role)}
        if org:
            claims["org"] = org
        if practitioner:
            claims["fhirUser"] = f"Practitioner/{practitioner}"
        return self._sign(claims, user.id, "ehr", scope)

    def system_token(self, scope: str = "system/*.read") -> str:
        self._n += 1
        cid = f"backend{self._n}"
        self.service.clients.add("confidential", client_id=cid, name="Backend",
                                 scopes=scope)  # fmt: skip
        return self._sign({"sub": cid, "role": str(Role.SYSTEM)}, None, cid, scope)

    def get(self, token: str, path: str) -> httpx.Response:
        return self._loop.run_until_complete(
            self._http.get(f"/fhir/{path}", headers={"Authorization": f"Bearer {token}"})
        )

    def post(self, token: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return self._loop.run_until_complete(self._http.post(
            f"/fhir/{path}", json=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
        ))  # fmt: skip


def ids(bundle: dict[str, Any], rtype: str | None = None) -> set[str]:
    """The ids in a Bundle's entries (of ``rtype`` if given)."""
    return {
        e["resource"]["id"] for e in bundle.get("entry", ())
        if "resource" in e and (rtype is None or e["resource"]["resourceType"] == rtype)
    }


def obs_of(patients: frozenset[str] | set[str]) -> set[str]:
    return {f"obs-{p}" for p in patients}
