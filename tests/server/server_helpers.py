"""Helpers for the FHIR API tests: a synchronous client over httpx's ASGI transport and
assertions on OperationOutcomes. (Imported by ``conftest.py`` and the test modules.)"""

from __future__ import annotations

from typing import Any

import httpx

from fhir_test_client import Client

__all__ = ["BASE", "FHIR_JSON", "MAX_BODY", "NOW", "Client", "assert_outcome"]

BASE = "http://hie.test/fhir"
FHIR_JSON = "application/fhir+json; charset=utf-8"
MAX_BODY = 256 * 1024
NOW = 1_700_000_000_000_000  # the app clock in tests (2023-11-14T22:13:20Z)


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
