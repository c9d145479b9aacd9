"""Several server processes on one port: ``huitong serve --workers N`` on Linux.

uvicorn's own ``--workers`` opens one listening socket in the supervisor and lets every
worker accept from it. Clients that keep their connections open (a load balancer's pool, an
integration engine, a benchmark) are then split by whichever worker woke first when each
connection arrived: in ten loaded runs, 32 connections split between two workers 29/3, 26/6,
24/8 … (the larger share 22.2 on average; 19.1 with a socket per worker), and the busier
worker, one core at most, set the throughput and the latency of everything it held. Here
each worker opens its *own* listening socket on the port with ``SO_REUSEPORT``; the kernel
hashes every new connection to one of them, so connections are spread evenly in
expectation and no worker is woken for a connection it will not get.

The supervisor is the ``huitong serve`` process itself: once it has checked the schema and the
port, it replaces itself (``exec``) with ``python -m huitong.supervisor``, a fresh interpreter
that imports the app's modules once (``preload``) and forks the workers from there, so the
≈ 130 MB of code, definitions and dictionaries they all load are shared (PSS of a two-worker
server after 150 Synthea bundles: 335 MB forked, 492 MB when each worker loaded its own). It
restarts a worker that dies after it started, stops everything on SIGINT/SIGTERM, and gives up
with the worker's exit code when a worker fails before it ever served (a bad configuration
would otherwise restart forever). Every worker dies with the supervisor (``die_with_parent``).
Elsewhere than Linux (no ``SO_REUSEPORT`` load balancing), ``cli.py`` keeps uvicorn's workers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

from huitong.runtime import die_with_parent

__all__ = [
    "Supervisor", "exec_supervisor", "listening_socket", "port_in_use", "reuse_port_balancing",
]

# What uvicorn uses by default: connections waiting for accept() while a worker is busy.
BACKLOG = 2048
# A worker gets this long to finish its requests and close its connections on shutdown.
STOP_SECONDS = 30.0
# A worker that keeps dying right after starting is not restarted in a tight loop.
RESTART_PAUSE = 1.0


def reuse_port_balancing() -> bool:
    """Whether the kernel spreads connections over sockets bound with ``SO_REUSEPORT``
    (Linux; on BSD and macOS the option exists but the last socket bound takes them all)."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_in_use(host: str, port: int) -> bool:
    """Whether another socket holds ``host:port``. Bound *without* ``SO_REUSEPORT``, so that
    a second Huitong started on the same port by mistake (whose workers would otherwise
    join this one's group and take half its connections) is refused too."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def listening_socket(host: str, port: int) -> socket.socket:
    """A worker's own listening socket on the shared port."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def serve_worker(host: str, port: int, ready: Event) -> None:
    """One worker process: its socket, then uvicorn with the app built from the environment
    (``huitong.cli:app_from_env``: its own database connections). ``ready`` is set once the
    app has started, which tells the supervisor that a later exit is a crash to restart."""
    import uvicorn

    die_with_parent()
    # A forked worker inherits the supervisor's handlers until uvicorn installs its own.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                ready.set()

    config = uvicorn.Config(
        "huitong.cli:app_from_env", factory=True, log_level="warning", access_log=False
    )
    sock = listening_socket(host, port)
    _Server(config).run(sockets=[sock])
    # uvicorn.Server.run returns normally on a startup failure; say so in the exit code.
    sys.exit(0 if ready.is_set() else 3)


@dataclass
class _Worker:
    process: BaseProcess
    ready: Event
    started_at: float = field(default_factory=time.monotonic)


Say = Callable[[str, str], None]


def _say_stderr(en: str, zh: str) -> None:
    print(f"{en}\n{zh}", file=sys.stderr, flush=True)


class Supervisor:
    """Runs ``workers`` processes of ``target(host, port, ready)`` until told to stop."""

    def __init__(
        self,
        host: str,
        port: int,
        workers: int,
        *,
        target: Callable[[str, int, Event], None] = serve_worker,
        context: BaseContext | None = None,
        say: Say = _say_stderr,
    ) -> None:
        self.host, self.port, self.count = host, port, workers
        self._target = target
        # spawn unless told otherwise: a worker must not inherit a database pool or threads.
        # main() forks, from a process that has only imported modules (see preload).
        self._ctx: Any = context or multiprocessing.get_context("spawn")
        self._say = say
        self._stopping = False
        self.workers: list[_Worker] = []

    def _start(self, index: int) -> _Worker:
        ready = self._ctx.Event()
        # The worker's number, 0 … N-1, the same for its replacement after a crash: MQTT
        # device channels subscribe under a client id per worker (mqtt_runtime.py), and a
        # restarted worker must take its own broker session back, with its unacknowledged
        # readings. Set while the child starts (it copies the environment), then put back.
        before = os.environ.get("HUITONG_WORKER_INDEX")
        os.environ["HUITONG_WORKER_INDEX"] = str(index)
        try:
            return self._spawn(ready)
        finally:
            if before is None:
                del os.environ["HUITONG_WORKER_INDEX"]
            else:
                os.environ["HUITONG_WORKER_INDEX"] = before

    def _spawn(self, ready: Event) -> _Worker:
        process = self._ctx.Process(
            target=self._target, args=(self.host, self.port, ready), daemon=False,
            name="huitong-worker",
        )
        process.start()
        return _Worker(process, ready)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (exit code 0), or until a worker fails before it
        started (that worker's exit code, the others stopped)."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.workers = [self._start(i) for i in range(self.count)]
            code = self._watch()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def _watch(self) -> int:
        while not self._stopping:
            sentinels = [w.process.sentinel for w in self.workers]
            multiprocessing.connection.wait(sentinels, timeout=0.5)
            for i, worker in enumerate(self.workers):
                if self._stopping or worker.process.is_alive():
                    continue
                code = worker.process.exitcode or 0
                if not worker.ready.is_set():
                    self._say(
                        f"A server worker failed while starting (exit code {code}); stopping.",
                        f"服务工作进程启动失败（退出码 {code}），服务停止。",
                    )
                    return code or 1
                self._say(
                    f"Server worker {worker.process.pid} exited (code {code}); starting "
                    "another.",
                    f"服务工作进程 {worker.process.pid} 已退出（退出码 {code}），正在重新启动。",
                )
                if time.monotonic() - worker.started_at < RESTART_PAUSE:
                    time.sleep(RESTART_PAUSE)
                self.workers[i] = self._start(i)
        return 0

    def _stop_all(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                worker.process.terminate()  # SIGTERM: uvicorn finishes what it is serving
        deadline = time.monotonic() + STOP_SECONDS
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()


def exec_supervisor(host: str, port: int, workers: int) -> None:
    """Become the supervisor: this process (its pid, its parent's death signal, its place in
    the terminal's process group) goes on as a fresh interpreter running only this module.
    The environment carries the workers' settings (``huitong.cli:app_from_env``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    args = [sys.executable, "-m", "huitong.supervisor", host, str(port), str(workers)]
    os.execv(sys.executable, args)


def preload() -> None:
    """Import the app's modules once, here, and fork the workers from this state: the code,
    definitions, rule tables, dictionaries and the UCUM unit registry they load (about
    130 MB) are then shared between the workers instead of loaded by each. Frozen, so that
    no collection in a worker writes to those pages and makes its own copy of them. Nothing
    here opens a connection or starts a thread (each worker builds its own app, pool and
    threads after the fork)."""
    import gc

    import huitong.cli  # uvicorn's factory, huitong.cli:app_from_env
    import huitong.server.app  # noqa: F401 - what the factory builds
    from huitong.terminology.write_path import warm_units

    # The UCUM unit registry (about 0.8 s of CPU): built once here, not by every worker
    # while its first requests wait, and shared with them like the rest.
    warm_units()
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m huitong.supervisor")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("workers", type=int)
    args = parser.parse_args(argv)
    preload()
    fork = multiprocessing.get_context("fork")
    return Supervisor(args.host, args.port, args.workers, context=fork).run()


if __name__ == "__main__":
    sys.exit(main())
