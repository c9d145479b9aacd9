"""``huitong serve --workers N`` on Linux: each worker its own ``SO_REUSEPORT`` socket
(supervisor.py). Real server processes on SQLite, connections counted from ``/proc``."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from huitong.supervisor import Supervisor, port_in_use, reuse_port_balancing

pytestmark = pytest.mark.skipif(
    not reuse_port_balancing(), reason="SO_REUSEPORT load balancing is Linux-only"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _socket_inodes(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on local ``port`` in ``state`` (01 established, 0A listen)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == state:
                inodes.add(cols[9])
    return inodes


def _held(pid: int, inodes: set[str]) -> list[str]:
    """Which of ``inodes`` the process ``pid`` holds open."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            found.append(target[8:-1])
    return found


def _established_by_pid(port: int, pids: list[int]) -> dict[int, int]:
    """Server-side established connections on ``port`` held by each of ``pids``."""
    inodes = _socket_inodes(port, "01")
    return {pid: len(_held(pid, inodes)) for pid in pids}


def _start(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HUITONG_AUTH": "off"}
    db = f"sqlite:///{tmp_path / 'w.db'}"
    subprocess.run(
        [sys.executable, "-m", "huitong", "db", "upgrade", "--db", db], env=env, check=True,
        stdout=subprocess.DEVNULL,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "huitong", "serve", "--db", db, "--port", str(port),
         "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _wait_serving(port, proc)
    return proc


def _wait_serving(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not start")


def _workers(proc: subprocess.Popen[bytes], port: int) -> list[int]:
    """The children that listen on the port (not multiprocessing's resource tracker)."""
    return list(_listening_sockets(proc, port))


def _listening_sockets(proc: subprocess.Popen[bytes], port: int) -> dict[int, str]:
    """Each child listening on the port, and the inode of the listening socket it holds."""
    listening = _socket_inodes(port, "0A")
    found: dict[int, str] = {}
    for pid in _children(proc.pid):
        held = _held(pid, listening)
        if held:
            found[pid] = held[0]
    return found


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_connections_spread_over_workers_and_a_crashed_worker_is_replaced(
    tmp_path: Path,
) -> None:
    port = _free_port()
    proc = _start(tmp_path, port)
    try:
        sockets = _listening_sockets(proc, port)
        workers = list(sockets)
        assert len(workers) == 2
        # Each worker its own listening socket: the kernel, not a race between the workers'
        # wake-ups, decides where a connection goes (one shared socket let a loaded
        # benchmark's 32 connections split 29/3).
        assert len(set(sockets.values())) == 2
        # 40 connections opened at once (the kernel completes them before any accept),
        # then one request on each, kept open: each was hashed to one worker's socket.
        # With one shared socket, the first worker to wake accepts the whole burst.
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        try:
            for conn in conns:
                conn.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: t\r\n\r\n")
            for conn in conns:
                assert conn.recv(64).startswith(b"HTTP/1.1 200")
            counts = _established_by_pid(port, workers)
            assert sum(counts.values()) == 40, counts
            # Binomial(40, 1/2): fewer than 6 on one side happens about once in 10^6 runs.
            assert min(counts.values()) >= 6, counts
        finally:
            for conn in conns:
                conn.close()

        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = _workers(proc, port)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no replacement worker: {_workers(proc, port)}")
        assert workers[1] in now
        for _ in range(10):  # every connection lands on a live worker
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                assert client.get("/fhir/metadata").status_code == 200
    finally:
        _stop(proc)
    assert proc.returncode == 0


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    port = _free_port()
    proc = _start(tmp_path, port)
    workers = _workers(proc, port)
    assert len(workers) == 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(40) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text()
    assert not port_in_use("127.0.0.1", port)


def test_a_port_in_use_is_refused_in_both_languages(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
        db = f"sqlite:///{tmp_path / 'p.db'}"
        result = subprocess.run(
            [sys.executable, "-m", "huitong", "serve", "--db", db, "--port", str(port),
             "--workers", "2"],
            env={**os.environ, "HUITONG_AUTH": "off"}, capture_output=True, text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"Port {port} on 127.0.0.1 is already in use." in result.stderr
    assert f"端口 {port} 已被占用" in result.stderr


# The supervisor's own rules, with stand-in workers (forked, so they need not be importable).

def _fails_at_start(host: str, port: int, ready: object) -> None:
    os._exit(5)


def _serves_then_exits(host: str, port: int, ready: object) -> None:
    ready.set()  # type: ignore[attr-defined]
    time.sleep(0.2)
    os._exit(1)


def _run_for(sup: Supervisor, seconds: float) -> int:
    """``sup.run()``, stopped by a SIGTERM to this process after ``seconds``."""

    def stop_later(signum: int, frame: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGALRM, stop_later)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return sup.run()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_worker_failing_before_it_started_stops_the_supervisor() -> None:
    said: list[str] = []
    sup = Supervisor(
        "127.0.0.1", 0, 2, target=_fails_at_start, context=multiprocessing.get_context("fork"),
        say=lambda en, zh: said.append(en + zh),
    )
    started = time.monotonic()
    assert sup.run() == 5
    assert time.monotonic() - started < 20
    assert any("failed while starting" in s and "启动失败" in s for s in said)
    assert all(not w.process.is_alive() for w in sup.workers)


def test_a_worker_that_had_started_is_restarted_until_the_supervisor_is_stopped() -> None:
    said: list[str] = []
    sup = Supervisor(
        "127.0.0.1", 0, 1, target=_serves_then_exits,
        context=multiprocessing.get_context("fork"), say=lambda en, zh: said.append(en),
    )

    assert _run_for(sup, 3.0) == 0
    restarts = [s for s in said if "starting another" in s]
    assert len(restarts) >= 2  # exits every ~0.2 s, restarted after RESTART_PAUSE each time


def _records_its_index(host: str, port: int, ready: object) -> None:
    # Appends "<index>" to the file named by the test, then serves until stopped; the
    # first run of worker 1 exits at once, so it is replaced.
    index = os.environ["HUITONG_WORKER_INDEX"]
    path = Path(os.environ["HUITONG_TEST_INDEX_FILE"])
    with path.open("a") as f:
        f.write(index + "\n")
    ready.set()  # type: ignore[attr-defined]
    if index == "1" and path.read_text().split().count("1") == 1:
        time.sleep(0.2)
        os._exit(1)
    time.sleep(30)


def test_each_worker_has_its_own_index_and_its_replacement_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = tmp_path / "indexes"
    monkeypatch.setenv("HUITONG_TEST_INDEX_FILE", str(record))
    monkeypatch.delenv("HUITONG_WORKER_INDEX", raising=False)
    sup = Supervisor(
        "127.0.0.1", 0, 2, target=_records_its_index,
        context=multiprocessing.get_context("fork"), say=lambda en, zh: None,
    )

    assert _run_for(sup, 3.0) == 0
    assert sorted(record.read_text().split()) == ["0", "1", "1"]


def test_the_workers_inherit_the_unit_registry_built_before_the_fork() -> None:
    """preload() builds the UCUM registry in the supervisor; a worker forked from it then
    starts no build of its own (the translation service's warm-up finds it done)."""
    code = (
        "from huitong.supervisor import preload\n"
        "preload()\n"
        "from huitong.terminology import write_path\n"
        "write_path._warm_units()\n"
        "print(write_path._warm, len(write_path._warming))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    assert out.stdout.split() == ["True", "0"]
