"""Run ``huitong serve`` in a child process for benchmarks, and watch its memory."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType

import httpx
import psycopg

ADMIN_URL = os.environ.get("HUITONG_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def fresh_database(engine: str) -> str:
    """A new empty database URL on ``engine``."""
    if engine == "sqlite":
        return f"sqlite:///{Path(tempfile.mkdtemp(prefix='huitong-bench-')) / 'bench.db'}"
    name = f"huitong_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


# Looked up here, not in the child: between fork and exec only this call runs (no import,
# no lock another thread of the benchmark might have held at the fork).
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the server child, before it starts: ask Linux to send it SIGTERM when the benchmark
    process dies. A benchmark stopped by a timeout or Ctrl-C otherwise left its server (and
    that server's database connections, ~15 with two workers) running; a few of them used up
    PostgreSQL's connection limit for everything else on the machine. (Linux ties the signal
    to the thread that started the child: the benchmarks start servers from the main one.)"""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``with ServerProcess(url) as s:`` — a running server at ``s.base`` (…/fhir)."""

    def __init__(self, database_url: str, *, extra_env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        self._url = database_url
        # A loopback benchmark server: no tokens (HUITONG_AUTH=off refuses other addresses).
        self._env = {**os.environ, "HUITONG_AUTH": "off", **(extra_env or {})}
        self._peak_kb = 0
        self._stop = threading.Event()

    def __enter__(self) -> ServerProcess:
        # PostgreSQL is never migrated by `serve`; do it as an operator would.
        subprocess.run(
            [sys.executable, "-m", "huitong", "db", "upgrade", "--db", self._url],
            env=self._env, check=True, stdout=subprocess.DEVNULL,
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "huitong", "serve", "--db", self._url, "--port", str(self.port)],
            env=self._env, stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.base}/metadata", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            self.proc.kill()
            raise RuntimeError("server did not start")
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def _sample(self) -> None:
        status = Path(f"/proc/{self.proc.pid}/status")
        while not self._stop.is_set():
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self._peak_kb = max(self._peak_kb, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.2)

    def peak_rss_mb(self) -> float:
        return self._peak_kb / 1024

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
