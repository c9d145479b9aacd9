"""``huitong import``: Bundles, NDJSON, folders and .tar.gz archives, through the FHIR API.

Every file becomes transaction Bundles posted to the FHIR base — to a running server over
HTTP, or to the same application in-process — so imported data takes exactly the write path
(validation, indexing, transactions) that any client's data takes.

- a ``transaction`` or ``batch`` Bundle is posted as it is;
- a ``collection``/``searchset`` Bundle, a single resource, or NDJSON lines are wrapped in
  transaction Bundles of up to :data:`CHUNK` entries: ``PUT Type/id`` when the resource has
  an id (so re-importing is idempotent), ``POST Type`` otherwise;
- archives and folders are read in name order, except that files named
  ``hospitalInformation*`` and ``practitionerInformation*`` come first (Synthea's shared
  organisations and practitioners, which patient bundles may reference).
"""

from __future__ import annotations

import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx
import orjson

__all__ = ["CHUNK", "HttpTarget", "InProcessTarget", "NamedBundle", "iter_bundles", "load_bundles"]

CHUNK = 500
_FIRST = ("hospitalInformation", "practitionerInformation")


@dataclass(frozen=True, slots=True)
class NamedBundle:
    name: str
    bundle: dict[str, Any]


def _priority(name: str) -> tuple[int, str]:
    base = name.rsplit("/", 1)[-1]
    return (0 if base.startswith(_FIRST) else 1, name)


def _wrap(resources: list[dict[str, Any]]) -> dict[str, Any]:
    entries = []
    for r in resources:
        rtype = r.get("resourceType", "Resource")
        if isinstance(r.get("id"), str):
            request = {"method": "PUT", "url": f"{rtype}/{r['id']}"}
        else:
            request = {"method": "POST", "url": str(rtype)}
        entries.append({"resource": r, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _from_json(name: str, data: bytes) -> Iterator[NamedBundle]:
    doc = orjson.loads(data)
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        if doc.get("type") in ("transaction", "batch"):
            yield NamedBundle(name, doc)
            return
        resources = [e["resource"] for e in doc.get("entry", []) if "resource" in e]
    else:
        resources = [doc]
    for i in range(0, len(resources), CHUNK):
        yield NamedBundle(f"{name}#{i // CHUNK}", _wrap(resources[i : i + CHUNK]))


def _from_ndjson(name: str, data: bytes) -> Iterator[NamedBundle]:
    lines = [ln for ln in data.splitlines() if ln.strip()]
    for i in range(0, len(lines), CHUNK):
        chunk = [orjson.loads(ln) for ln in lines[i : i + CHUNK]]
        yield NamedBundle(f"{name}:{i + 1}", _wrap(chunk))


def _from_bytes(name: str, data: bytes) -> Iterator[NamedBundle]:
    if name.endswith((".ndjson", ".jsonl")):
        yield from _from_ndjson(name, data)
    elif name.endswith(".json") or data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        # Names are not trusted alone: real archives hold JSON files whose names were
        # mangled (e.g. a trailing quote), and skipping them would silently lose data.
        yield from _from_json(name, data.removeprefix(b"\xef\xbb\xbf"))


def _from_archive(path: Path) -> Iterator[NamedBundle]:
    with tarfile.open(path) as tf:
        members = sorted(
            (m for m in tf.getmembers() if m.isfile()), key=lambda m: _priority(m.name)
        )
        for m in members:
            f = tf.extractfile(m)
            if f is not None:
                yield from _from_bytes(f"{path.name}:{m.name}", f.read())


def iter_bundles(paths: Iterable[Path]) -> Iterator[NamedBundle]:
    """Transaction or batch Bundles from files, folders and archives, in load order."""
    for path in paths:
        if path.is_dir():
            files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p:
                           _priority(str(p)))
            yield from iter_bundles(files)
        elif path.name.endswith((".tar.gz", ".tgz", ".tar")):
            yield from _from_archive(path)
        else:
            yield from _from_bytes(path.name, path.read_bytes())


class HttpTarget:
    """Posts Bundles to a running server's FHIR base URL."""

    def __init__(self, base_url: str) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=300)

    def post(self, bundle: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        r = self._client.post(
            "", content=orjson.dumps(bundle), headers={"Content-Type": "application/fhir+json"}
        )
        return r.status_code, r.json()


class InProcessTarget:
    """Posts Bundles to the FHIR application in this process (no network): the same ASGI
    app ``huitong serve`` runs, driven through httpx's ASGI transport on a private loop."""

    def __init__(self, repo: Any, settings: Any) -> None:
        import asyncio
        import dataclasses

        from huitong.server.app import create_app

        self._loop = asyncio.new_event_loop()
        # An operator on this machine with the database URL in hand: no token to check.
        local = dataclasses.replace(settings, auth="off")
        transport = httpx.ASGITransport(app=create_app(repo, local))
        self._client = httpx.AsyncClient(
            transport=transport, base_url="http://localhost", timeout=None
        )

    def post(self, bundle: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        r = self._loop.run_until_complete(
            self._client.post(
                "/fhir", content=orjson.dumps(bundle),
                headers={"Content-Type": "application/fhir+json"},
            )
        )
        return r.status_code, r.json()

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


def _types(bundle: dict[str, Any]) -> Counter[str]:
    return Counter(
        e["resource"]["resourceType"]
        for e in bundle.get("entry", [])
        if isinstance(e.get("resource"), dict) and "resourceType" in e["resource"]
    )


def load_bundles(target: Any, bundles: Iterable[Any], *, label: str) -> Counter[str]:
    """Post every bundle, with a progress bar; returns resources loaded per type, plus the
    number of failed bundles under ``"__errors__"``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    counts: Counter[str] = Counter()
    errors = 0
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        "resources / 条资源", TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task(label, total=None)
        for item in bundles:
            named = item if isinstance(item, NamedBundle) else NamedBundle("bundle", item)
            status, body = target.post(named.bundle)
            if status >= 400:
                errors += 1
                issues = body.get("issue", []) if isinstance(body, dict) else []
                detail = "; ".join(str(i.get("diagnostics", "")) for i in issues[:3])
                progress.console.print(
                    f"[red]{named.name}: HTTP {status} {detail}[/red]", highlight=False
                )
                continue
            if named.bundle.get("type") == "batch":
                # batch entries succeed or fail one by one
                statuses = [e.get("response", {}).get("status", "") for e in body.get("entry", [])]
                failed = sum(1 for s in statuses if not s.startswith(("2", "3")))
                if failed:
                    errors += 1
                    click.echo(f"{named.name}: {failed} entries failed / {failed} 个条目失败")
            c = _types(named.bundle)
            counts.update(c)
            progress.advance(task, sum(c.values()))
    counts["__errors__"] = errors
    return counts
