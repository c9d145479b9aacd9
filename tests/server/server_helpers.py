"""Helpers for the FHIR API tests: a synchronous client over httpx's ASGI transport and
assertions on OperationOutcomes. (Imported by ``conftest.py`` and the test modules.)"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

BASE = "http://hie.test/fhir"
FHIR_JSON = "application/fhir+json; charset=utf-8"
MAX_BODY = 256 * 1024
NOW = 1_700_000_000_000_000  # the app clock in tests (2023-11-14T22:13:20Z)


class Client:
    """Synchronous requests against the ASGI app (no network)."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hie.test"
        )

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        if "json" in kw:  # send FHIR JSON with the FHIR media type by default
            kw["content"] = orjson.dumps(kw.pop("json"))
            kw.setdefault("headers", {}).setdefault("content-type", "application/fhir+json")
        return self._loop.run_until_complete(self._client.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


def assert_outcome(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """``resp`` is an OperationOutcome with ``status`` (and, if given, issue code ``code``)."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == FHIR_JSON
    body: dict[str, Any] = resp.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"], body
    if code is not None:
        assert body["issue"][0]["code"] == code, body
    return body


def patient(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": "Wang", "given": ["Li"]}], **extra}


def create(client: Client, resource: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]
