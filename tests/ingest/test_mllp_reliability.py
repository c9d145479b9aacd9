"""Reliability of the MLLP path with a real server process, real sockets and real databases.

- SIGKILL in the middle of a sustained stream; restart; the sender resends what was not
  acknowledged (and, to be harsh, everything): every message that got AA is stored and
  processed exactly once, nothing is duplicated.
- The database goes away mid-stream (the connection to PostgreSQL runs through a TCP proxy
  the test cuts): the engine answers AE instead of AA, loses nothing, and once the database
  is back the resends are taken and processed exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from huitong.ingest.mllp import MllpClient

pytestmark = pytest.mark.slow

CHANNELS = """
[[channel]]
id = "county"
organization = "Organization/county"
transport = "mllp"
format = "hl7v2"
sending_facility = "COUNTY"
"""


def _message(i: int) -> bytes:
    return (
        f"MSH|^~\\&|HIS|COUNTY|HUITONG|REGION|20261122083000+0800||ADT^A04^ADT_A01|C{i:06d}|P|2.5\r"
        f"EVN|A04|20261122083000+0800\r"
        f"PID|1||MRN{i:06d}^^^COUNTY^MR||张^伟{i}||19700101|M\r"
        f"PV1|1|O|||||||||||||||||V{i:06d}^^^COUNTY^VN\r"
    ).encode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, db: str, tmp: Path) -> None:
        self.db, self.tmp = db, tmp
        self.http, self.mllp = _free_port(), _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "huitong", *args, "--db", self.db], check=True,
                       stdout=subprocess.DEVNULL)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "huitong", "serve", "--db", self.db,
             "--port", str(self.http), "--mllp-port", str(self.mllp)],
            stdout=subprocess.DEVNULL, stderr=open(self.tmp / "server.log", "ab"),  # noqa: SIM115
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.mllp), timeout=0.2
            ):
                return
            time.sleep(0.1)
        raise AssertionError((self.tmp / "server.log").read_text())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _msa(ack: bytes) -> str:
    for seg in ack.decode().split("\r"):
        if seg.startswith("MSA"):
            return seg.split("|")[1]
    raise AssertionError(ack)


async def _stream(port: int, ids: list[int], acked: dict[int, str], *, stop_after: float | None
                  = None) -> None:
    """Send ``ids`` on 4 connections, each waiting for its ACK; record each ACK code."""
    chunks = [ids[k::4] for k in range(4)]

    async def one(chunk: list[int]) -> None:
        try:
            client = await MllpClient.connect("127.0.0.1", port, timeout=5)
        except OSError:
            return
        try:
            for i in chunk:
                try:
                    acked[i] = _msa(await client.send(_message(i), timeout=10))
                except (TimeoutError, OSError, asyncio.IncompleteReadError, EOFError):
                    return  # the server died: this message and the rest are unacknowledged
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    await asyncio.gather(*(one(c) for c in chunks))


# Patients as the institution sent them (the identity service adds a golden record each).
_SOURCE_PATIENTS = ("SELECT COUNT(*) FROM resources WHERE res_type = 'Patient' "
                    "AND res_id NOT IN (SELECT golden FROM mpi_sources)")


def _counts(db: str) -> tuple[dict[str, int], int, int]:
    """(message statuses, distinct control ids, source Patient count) from the database."""
    if db.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(db.removeprefix("sqlite:///"))
        try:
            q = conn.execute
            statuses = dict(q("SELECT status, COUNT(*) FROM ingest_messages GROUP BY status"))
            distinct = q("SELECT COUNT(DISTINCT control_id) FROM ingest_messages").fetchone()[0]
            patients = q(_SOURCE_PATIENTS).fetchone()[0]
        finally:
            conn.close()
        return statuses, distinct, patients
    with psycopg.connect(db) as conn:
        statuses = dict(conn.execute(
            "SELECT status, COUNT(*) FROM ingest_messages GROUP BY status").fetchall())
        distinct = conn.execute("SELECT COUNT(DISTINCT control_id) FROM ingest_messages"
                                ).fetchone()[0]
        patients = conn.execute(_SOURCE_PATIENTS).fetchone()[0]
    return statuses, distinct, patients


@pytest.fixture
def fresh_db(engine_url: str) -> str:
    return engine_url


def test_sigkill_mid_stream_then_resend_is_exactly_once(fresh_db: str, tmp_path: Path) -> None:
    (tmp_path / "channels.toml").write_text(CHANNELS, encoding="utf-8")
    server = Server(fresh_db, tmp_path)
    server.cli("db", "upgrade")
    server.cli("channel", "load", str(tmp_path / "channels.toml"))
    n = 400
    ids = list(range(n))
    acked: dict[int, str] = {}
    server.start()
    try:
        # Kill once the stream is under way (a few AAs back), not after a fixed time: on a
        # loaded machine the first ACK can take longer than any fixed delay.
        def kill_mid_stream() -> None:
            deadline = time.time() + 120
            while len(acked) < 20 and time.time() < deadline:
                time.sleep(0.005)
            server.kill()

        killer = threading.Thread(target=kill_mid_stream)
        killer.start()
        asyncio.run(_stream(server.mllp, ids, acked))
        killer.join()
        first_round = {i for i, code in acked.items() if code == "AA"}
        assert 0 < len(first_round) < n, "the kill should land mid-stream"
        server.start()
        # The sender resends everything it holds no AA for — and, harsher, all the rest too.
        resend: dict[int, str] = {}
        asyncio.run(_stream(server.mllp, ids, resend))
        assert resend == dict.fromkeys(ids, "AA")
    finally:
        server.stop()
    statuses, distinct, patients = _counts(fresh_db)
    assert statuses == {"processed": n}
    assert distinct == n
    assert patients == n  # one patient per message, none twice


class _Proxy:
    """A TCP proxy to PostgreSQL that the test can cut (connections reset, new ones refused)
    and restore: a database outage without stopping the shared server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port()
        self.up = threading.Event()
        self.up.set()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up.clear()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self._listener.close()


@pytest.mark.postgres
def test_database_outage_answers_ae_and_catches_up(postgres_url: str, tmp_path: Path) -> None:
    from huitong.store.engines import open_engine

    with psycopg.connect(postgres_url, autocommit=True) as conn:  # an empty database
        conn.execute("DROP DATABASE IF EXISTS huitong_outage")
        conn.execute("CREATE DATABASE huitong_outage")
    direct = postgres_url.rsplit("/", 1)[0] + "/huitong_outage"
    open_engine(direct).close()  # migrate
    host_port = direct.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    proxy = _Proxy((host, int(port or 5432)))
    via_proxy = direct.replace(host_port, f"127.0.0.1:{proxy.port}")
    (tmp_path / "channels.toml").write_text(CHANNELS, encoding="utf-8")
    server = Server(via_proxy, tmp_path)
    server.cli("channel", "load", str(tmp_path / "channels.toml"))
    server.start()
    n = 120
    ids = list(range(n))
    try:
        acked: dict[int, str] = {}
        asyncio.run(_stream(server.mllp, ids[:40], acked))
        assert set(acked.values()) == {"AA"}
        proxy.cut()
        time.sleep(2.5)  # past the intake's channel cache: routing itself now meets the outage
        during: dict[int, str] = {}
        asyncio.run(_stream(server.mllp, ids[40:80], during))
        assert during and set(during.values()) <= {"AE"}, during  # never AA without the DB
        proxy.restore()
        deadline = time.time() + 60
        after: dict[int, str] = {}
        while time.time() < deadline:
            after.clear()
            asyncio.run(_stream(server.mllp, ids[40:], after))
            if after == dict.fromkeys(ids[40:], "AA"):
                break
            time.sleep(0.5)
        assert after == dict.fromkeys(ids[40:], "AA")
    finally:
        server.stop()
        proxy.close()
    statuses, distinct, patients = _counts(direct)
    assert statuses == {"processed": n} and distinct == n and patients == n
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS huitong_outage WITH (FORCE)")
