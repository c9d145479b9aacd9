"""The seeded two-organization region of tests/access_enforcement behind the real app, with
the consent settings under test, plus calls to the JSON APIs and tokens for a user that
outlive a clock jump (a fresh token for the same account, as a refresh would give)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "access_enforcement"))

from enforce_helpers import FAST_HASHER, ROOT, FixedClock, Region, seed

from huitong.access import AuthService, AuthSettings, Role
from huitong.config import Settings
from huitong.server.app import create_app
from huitong.store.repository import Repository

HOUR = 3600 * 1_000_000


class World(Region):
    """:class:`Region` with the app rebuilt from ``settings`` overrides (rate limit off
    unless asked: these tests make many requests with one client)."""

    def __init__(self, repo: Repository, **settings: Any) -> None:
        # Region.__init__ without its app: hooks an app installs stay on the repository
        seed(repo)
        self.repo = repo
        self.clock = FixedClock()
        self.service = AuthService(
            repo, AuthSettings(), clock=self.clock, password_hasher=FAST_HASHER
        )
        if self.service.clients.get("ehr") is None:  # a second World on the same database
            self.service.clients.add(
                "confidential",
                client_id="ehr",
                name="EHR",
                redirect_uris=["https://ehr.example.cn/cb"],
                scopes="user/*.cruds user/*.rs",
            )
        self._n = 0
        self._loop = asyncio.new_event_loop()
        values = {
            "database_url": "unused",
            "mpi": "off",
            "auth": "on",
            "base_url": f"{ROOT}/fhir",
            "rate_limit": "0",
            "audit": "off",
            **settings,
        }
        known = set(Settings.__dataclass_fields__)
        self.settings = Settings.from_env({}, **{k: v for k, v in values.items() if k in known})
        self.app = create_app(repo, self.settings, clock=self.clock)
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=ROOT)
        self.users: dict[str, tuple[str, dict[str, Any]]] = {}

    def account(
        self,
        name: str,
        role: Role,
        *,
        org: str | None = None,
        practitioner: str | None = None,
        patient_ids: tuple[str, ...] = (),
    ) -> str:
        """Create the account ``name`` and return a token for it."""
        user = self.service.accounts.add(
            f"{name}-{len(self.users)}",
            "correct horse battery",
            role,
            organization_id=org,
            practitioner_id=practitioner,
            patient_ids=list(patient_ids),
        )
        claims: dict[str, Any] = {"sub": user.id, "role": str(role)}
        if org:
            claims["org"] = org
        if practitioner:
            claims["fhirUser"] = f"Practitioner/{practitioner}"
        self.users[name] = (user.id, claims)
        return self.token(name)

    def token(self, name: str, scope: str = "user/*.cruds") -> str:
        """A fresh access token for the account ``name`` at the current clock."""
        user_id, claims = self.users[name]
        return self._sign(claims, user_id, "ehr", scope)

    def user_id(self, name: str) -> str:
        return self.users[name][0]

    def request(
        self, method: str, token: str | None, path: str, body: Any = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if path.startswith("/fhir") and body is not None:
            headers["Content-Type"] = "application/fhir+json"
        return self._loop.run_until_complete(
            self._http.request(method, path, json=body, headers=headers)
        )

    def api(self, method: str, token: str, path: str, body: Any = None) -> httpx.Response:
        return self.request(method, token, f"/api/{path}", body)

    def put(self, token: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.request("PUT", token, f"/fhir/{path}", body)

    def delete(self, token: str, path: str) -> httpx.Response:
        return self.request("DELETE", token, f"/fhir/{path}")
