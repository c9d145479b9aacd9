"""Synchronous clients over the real application (httpx ASGI transport, no network), shared by
the test folders: ``Client`` for requests of any kind (``json=`` bodies sent as FHIR JSON),
``FhirServer`` to check that the Bundles the integration engine's converters produce are
accepted and idempotent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson


class FhirServer:
    """Synchronous calls to the FHIR app; ``post_bundle`` asserts the transaction succeeded."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://hie.test")

    def request(self, method: str, url: str, body: Any = None) -> httpx.Response:
        kw: dict[str, Any] = {}
        if body is not None:
            kw = {"content": orjson.dumps(body),
                  "headers": {"content-type": "application/fhir+json"}}
        return self._loop.run_until_complete(self._client.request(method, url, **kw))

    def post_bundle(self, bundle: dict[str, Any]) -> dict[str, Any]:
        r = self.request("POST", "/fhir", bundle)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        r = self.request("POST", f"/fhir/{resource['resourceType']}", resource)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def search(self, query: str) -> list[dict[str, Any]]:
        r = self.request("GET", f"/fhir/{query}{'&' if '?' in query else '?'}_count=1000")
        assert r.status_code == 200, r.text
        return [e["resource"] for e in r.json().get("entry", [])]

    def count(self, query: str) -> int:
        """How many resources match ``query`` (``Patient`` or ``Patient?identifier=s|``).
        Count source patients by identifier system: the identity service adds golden
        records of its own."""
        r = self.request("GET", f"/fhir/{query}{'&' if '?' in query else '?'}_summary=count")
        assert r.status_code == 200, r.text
        return int(r.json()["total"])

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


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
