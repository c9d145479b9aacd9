"""The web pages with authentication ON: the demo region (loaded through an open app on the
same database), then the real application with the authorization server, and one account
per role the pages serve. Imported by the page and browser tests.

Served from ``http://127.0.0.1``: the authorization server issues tokens over plain http only
on a loopback address (RFC 8252 §7.3), as a development server runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from web_world import SyncClient, WebWorld, build_world

from huitong.access.accounts import AccountStore
from huitong.config import Settings
from huitong.fhir.search.parse import parse_search
from huitong.server import create_app
from huitong.store import Repository

ROOT = "http://127.0.0.1"
PASSWORD = "correct horse battery"


@dataclass
class AuthWorld:
    app: Starlette
    demo: WebWorld
    care_org: str  # an organization where the demo patient was seen
    outside_org: str  # one where they never were
    users: dict[str, str]  # role label → user name
    review_pair: tuple[str, str]  # two Patients the identity service sent to review


def _organizations_of(repo: Repository, patient_id: str) -> set[str]:
    found = repo.search(parse_search("Encounter", [("patient", patient_id), ("_count", "1000")]))
    return {m.resource["serviceProvider"]["reference"].removeprefix("Organization/")
            for m in found.matches if "serviceProvider" in m.resource}


def _look_alike(org: str, n: int, phone: str) -> dict[str, Any]:
    """A Patient with demographics only (no resident ID): matching needs a person's review."""
    return {
        "resourceType": "Patient",
        "identifier": [{"system": f"urn:huitong:test:{org}:mrn", "value": f"LA{n:04d}"}],
        "name": [{"text": "欧阳建国", "family": "欧阳", "given": ["建国"]}],
        "gender": "male", "birthDate": "1958-04-12",
        "telecom": [{"system": "phone", "value": phone}],
        "address": [{"text": "临江市江城区人民路18号", "city": "临江市", "district": "江城区"}],
        "managingOrganization": {"reference": f"Organization/{org}"},
    }


def build_auth_world(repo: Repository, residents: int = 6) -> AuthWorld:
    demo = build_world(repo, residents=residents)
    open_client = SyncClient(demo.app)
    orgs = [m.id for m in repo.search(parse_search("Organization", [("_count", "100")])).matches]
    care = sorted(_organizations_of(repo, demo.patient.id))
    outside = next(o for o in orgs if o not in care)
    ids = []
    try:
        for n, (org, phone) in enumerate([(care[0], "13900001111"), (outside, "13700002222")]):
            resp = open_client.post("/fhir/Patient", content=orjson.dumps(_look_alike(org, n, phone)),
                                    headers={"content-type": "application/fhir+json"})
            assert resp.status_code == 201, resp.text[:300]
            ids.append(resp.json()["id"])
    finally:
        open_client.close()
    settings = Settings.from_env({}, database_url="unused", auth="on")
    app = create_app(repo, settings)
    accounts = AccountStore(repo, lambda: 1_800_000_000_000_000, _ids())
    accounts.add("dr.li", PASSWORD, "clinician", display_name="李医生", organization_id=care[0])
    accounts.add("dr.zhao", PASSWORD, "clinician", display_name="赵医生",
                 organization_id=outside)
    accounts.add("dr.sun", PASSWORD, "clinician", display_name="孙医生",
                 organization_id=outside)
    accounts.add("ops.wu", PASSWORD, "platform-admin", display_name="吴运维")
    # the demo resident, signed in to their own record (the patient portal), and an auditor
    accounts.add("resident", PASSWORD, "patient", display_name="居民",
                 patient_ids=[demo.patient.id])
    accounts.add("audit.qian", PASSWORD, "auditor", display_name="钱审计")
    return AuthWorld(app, demo, care[0], outside,
                     {"clinician": "dr.li", "outside": "dr.zhao", "outside2": "dr.sun",
                      "operator": "ops.wu", "patient": "resident", "auditor": "audit.qian"},
                     (f"Patient/{ids[0]}", f"Patient/{ids[1]}"))


def _ids() -> Any:
    n = 0

    def next_id() -> str:
        nonlocal n
        n += 1
        return f"web-user-{n}"

    return next_id


class Browser(SyncClient):
    """A cookie-keeping client on the loopback root (no redirects followed)."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self._loop.run_until_complete(self._client.aclose())
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ROOT)

    def csrf(self, path: str = "/app/signin") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def sign_in(self, username: str, password: str = PASSWORD, next_url: str = "/app/"
                ) -> httpx.Response:
        return self.post("/app/signin", data={
            "csrf": self.csrf(), "step": "password", "username": username,
            "password": password, "next": next_url})


def signed_in(app: Any, username: str) -> Browser:
    browser = Browser(app)
    resp = browser.sign_in(username)
    assert resp.status_code == 303, resp.text[:500]
    return browser
