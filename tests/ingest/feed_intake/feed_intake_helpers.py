"""Shared by the feed intake tests: the real app with the feed routes mounted, a synchronous
client, channels and sample content."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson

from huitong.config import Settings
from huitong.server import create_app
from huitong.server.feeds_api import feed_routes

MAPPING_DIR = Path(__file__).resolve().parents[3] / "src/huitong/ingest/feeds/examples"
ORG = "Organization/c01"
MRN = "urn:huitong:mrn:C01"
RESIDENT = "urn:oid:2.16.156.10011.1.3"
KNOWN = "110101196003050012"  # the resident ID of the Patient known_resident_client stores
HEADER = "随访编号,病历号,身份证号,姓名,性别,出生日期,收缩压,舒张压,心率,随访时间"


class Client:
    """Synchronous requests against the ASGI app (no network)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://hie.test")

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        if "json" in kw:
            kw["content"] = orjson.dumps(kw.pop("json"))
            kw.setdefault("headers", {}).setdefault("content-type", "application/json")
        return self._loop.run_until_complete(self._client.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", url, **kw)

    def search(self, query: str) -> list[dict[str, Any]]:
        resp = self.get(f"/fhir/{query}", headers={"accept": "application/fhir+json"})
        assert resp.status_code == 200, resp.text
        return [e["resource"] for e in resp.json().get("entry", [])
                if e.get("search", {}).get("mode", "match") == "match"]

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


def feed_app(repo: Any) -> Any:
    """``create_app`` with auth off and the feed routes mounted (as the lead will)."""
    settings = Settings.from_env({}, database_url="unused", auth="off",
                                 base_url="http://hie.test/fhir")
    app = create_app(repo, settings)
    app.router.routes.extend(feed_routes(app.state.ingest))
    return app


def put_organization(client: Client) -> None:
    resp = client.put("/fhir/Organization/c01", content=orjson.dumps({
        "resourceType": "Organization", "id": "c01", "name": "社区卫生服务中心 C01",
        "identifier": [{"system": "urn:huitong:org-code", "value": "C01"}]}),
        headers={"content-type": "application/fhir+json"})
    assert resp.status_code in (200, 201), resp.text


def post_resident(client: Client, resident_id: str) -> None:
    """A Patient known by its resident ID, for readings and rows that name it."""
    resp = client.post("/fhir/Patient", content=orjson.dumps({
        "resourceType": "Patient", "identifier": [{"system": RESIDENT, "value": resident_id}]}),
        headers={"content-type": "application/fhir+json"})
    assert resp.status_code == 201, resp.text


def put_channel(client: Client, cid: str, **config: Any) -> None:
    body = {"organization": ORG, "transport": "http", **config}
    resp = client.put(f"/api/ingest/channels/{cid}", json=body)
    assert resp.status_code == 200, resp.text


def bp_row(n: int, *, mrn: str | None = None, sbp: str = "128", dbp: str = "82",
           date: str = "2024-03-05 08:30", hr: str = "72") -> str:
    mrn = mrn or f"M{n:04d}"
    return (f"F{n:04d},{mrn},11010119600305{n:04d},患者{n},男,1960年03月05日,{sbp},{dbp},{hr},"
            f"{date}")


def csv_bytes(rows: list[str], encoding: str = "utf-8") -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode(encoding)


def known_resident_client(repo: Any, **channel: Any) -> Client:
    """A feed app on ``repo`` with the institution and the Patient with resident ID
    ``KNOWN`` stored, and the channel ``home-bp`` when ``channel`` gives its settings."""
    c = Client(feed_app(repo))
    put_organization(c)
    post_resident(c, KNOWN)
    if channel:
        put_channel(c, "home-bp", **channel)
    return c
