"""Enhanced-mode application ACKs with a real server process (``huitong serve --mllp-port``),
its real retry worker, and a real MLLP listener standing in for the sender's system:
accept ACKs come back at once; the application ACKs, owed while the sender's listener is
down, survive a SIGKILL of the server and are delivered after the restart, once each."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from test_mllp_reliability import Server, _free_port

from huitong.ingest.mllp import MllpClient, start_mllp_server

pytestmark = pytest.mark.slow


def _message(i: int) -> bytes:
    return (
        f"MSH|^~\\&|HIS|COUNTY|HUITONG|REGION|20261122083000+0800||ADT^A04^ADT_A01|E{i:04d}|P|"
        f"2.5|||AL|AL\r"
        f"PID|1||MRN{i:04d}^^^COUNTY^MR||张^伟{i}||19700101|M\r"
    ).encode()


def _msa(payload: bytes) -> list[str]:
    return next(s for s in payload.decode().split("\r") if s.startswith("MSA")).split("|")


def _owed(db: str) -> dict[str, int]:
    """Application ACKs by status, straight from the database."""
    if db.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(db.removeprefix("sqlite:///"))
        try:
            return dict(conn.execute(
                "SELECT status, COUNT(*) FROM ingest_app_acks GROUP BY status").fetchall())
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(db) as conn:
        return dict(conn.execute(
            "SELECT status, COUNT(*) FROM ingest_app_acks GROUP BY status").fetchall())


def _wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_application_acks_survive_sigkill_and_reach_the_sender_after_restart(
    engine_url: str, tmp_path: Path
) -> None:
    ack_port = _free_port()  # the sender's return address: nobody listens there yet
    (tmp_path / "channels.toml").write_text(f"""
[[channel]]
id = "county"
organization = "Organization/county"
transport = "mllp"
format = "hl7v2"
sending_facility = "COUNTY"
ack_host = "127.0.0.1"
ack_port = {ack_port}
""", encoding="utf-8")
    server = Server(engine_url, tmp_path)
    server.cli("db", "upgrade")
    server.cli("channel", "load", str(tmp_path / "channels.toml"))
    n = 12

    async def send_all() -> list[list[str]]:
        async with await MllpClient.connect("127.0.0.1", server.mllp, timeout=10) as client:
            return [_msa(await client.send(_message(i), timeout=10)) for i in range(n)]

    server.start()
    try:
        accepts = asyncio.run(send_all())
        assert accepts == [["MSA", "CA", f"E{i:04d}"] for i in range(n)]
        # Processed by the retry worker; their application ACKs owed and failing to go out.
        _wait(lambda: sum(_owed(engine_url).values()) == n
              and _owed(engine_url).get("pending") == n)
        server.kill()

        received: list[bytes] = []

        async def listen_through_restart() -> None:
            async def handle(payload: bytes, peer: object) -> None:
                received.append(payload)

            listener = await start_mllp_server(handle, "127.0.0.1", ack_port)
            try:
                await asyncio.to_thread(server.start)
                async with asyncio.timeout(60):
                    while len(received) < n:
                        await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # room for any duplicate to show up
            finally:
                listener.close()
                await listener.wait_closed()

        asyncio.run(listen_through_restart())
    finally:
        server.stop()
    answers = sorted(tuple(_msa(p)[1:3]) for p in received)
    assert answers == [("AA", f"E{i:04d}") for i in range(n)]
    assert _owed(engine_url) == {"delivered": n}
