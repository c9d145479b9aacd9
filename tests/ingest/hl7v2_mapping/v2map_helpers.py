"""Helpers for the HL7 v2 mapping tests: read a sample as the wire would deliver it, a fixed
mapping context, and the FHIR app over a real SQLite repository."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hl7
import httpx
import orjson
import pytest

from huitong.ingest.hl7v2.mapping import MappingContext
from huitong_testdata import HL7V2_SAMPLES

CTX = MappingContext(
    organization="Organization/org-1",
    identifier_namespace="urn:huitong:org:org-1",
    now=datetime(2026, 1, 1, tzinfo=UTC),
)


def parse_bytes(raw: bytes) -> hl7.Message:
    """BOM stripped, UTF-8 (else GB18030), CR/LF/CRLF → CR, then python-hl7."""
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    return hl7.parse(text)


def parse_text(text: str) -> hl7.Message:
    return parse_bytes(text.encode("utf-8"))


def sample_paths() -> list[Path]:
    if not HL7V2_SAMPLES.exists():
        return []
    return sorted(HL7V2_SAMPLES.glob("*.hl7"))


def sample(name: str) -> hl7.Message:
    path = HL7V2_SAMPLES / name
    if not path.exists():
        pytest.skip(f"shared HL7 v2 samples not found at {HL7V2_SAMPLES}")
    return parse_bytes(path.read_bytes())


def resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", [])
            if e["resource"]["resourceType"] == rtype]


def only(bundle: dict[str, Any], rtype: str) -> dict[str, Any]:
    found = resources(bundle, rtype)
    assert len(found) == 1, f"{len(found)} {rtype} in bundle"
    return found[0]


class FhirClient:
    """Synchronous requests against the real FHIR app (ASGI, no network)."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://hie.test")

    def post_bundle(self, bundle: dict[str, Any]) -> httpx.Response:
        return self._loop.run_until_complete(self._client.post(
            "/fhir", content=orjson.dumps(bundle),
            headers={"content-type": "application/fhir+json"}))

    def get(self, url: str) -> httpx.Response:
        return self._loop.run_until_complete(self._client.get(url))

    def count(self, rtype: str) -> int:
        # Patients as institutions sent them: the identity service adds golden records.
        only_sources = "&_tag:not=urn:huitong:mpi|golden" if rtype == "Patient" else ""
        resp = self.get(f"/fhir/{rtype}?_summary=count{only_sources}")
        assert resp.status_code == 200, resp.text
        return int(resp.json()["total"])

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()
