"""Feeds END TO END into a fresh SQLite database: a generated CSV export through the csv
channel (store raw → convert → write batch by batch through the FHIR transaction executor →
status and report), and device readings published over MQTT through the mqtt channel runtime
(broker → store → convert → write → PUBACK).

    python bench/feeds_end_to_end.py [--rows 100000] [--readings 10000] [--skip-mqtt]
        [--engine sqlite|postgresql] [--mqtt-mode batch|single|both]
        [--mqtt-in-flight K] [--mqtt-workers N]

``--engine postgresql`` creates a fresh database on the local server (as bench/_server.py
does). Identity, quality and translation run in the write path as in production (their
settings' defaults). ``--mqtt-mode both`` measures the batched MQTT path (a broker batch
stored in one commit and written in one transaction) beside the one-by-one path, each on
its own fresh database. The MQTT publisher is a process of its own (gateways are other
machines), so the clock, the CPU and the GIL measured are the server's;
``--mqtt-in-flight`` sets how many broker batches are written at once, ``--mqtt-workers``
how many server processes share the subscription (MQTT 5 ``$share``, as the workers of
``huitong serve --workers N``). Besides the server's CPU it reports the CPU of the
PostgreSQL backends serving the run's database, and how busy the batch handlers were.

Targets (issue 3): 100,000-row CSV < 60 s; 10,000 MQTT readings < 20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import fresh_database
from devices_mqtt import Publisher
from feeds_csv import MAPPING, generate

from huitong.config import Settings
from huitong.ingest import mqtt_runtime
from huitong.ingest.channels import channel_from_config
from huitong.ingest.mqtt_runtime import start_mqtt_channels
from huitong.runtime import tune_collector
from huitong.server import create_app
from huitong.store import open_repository

MPI = "on"
ENGINE = "sqlite"
LAST_URL = ""  # of the database service_on_fresh_sqlite made last


def service_on_fresh_sqlite():  # type: ignore[no-untyped-def]
    """A fresh database on ENGINE (the name is historical) and the app's ingest service."""
    if ENGINE == "sqlite":
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='huitong-bench-')) / 'feeds.db'}"
    else:
        url = fresh_database("postgresql")
    global LAST_URL
    LAST_URL = url
    repo = open_repository(url)
    if ENGINE != "sqlite":
        repo.upgrade()
    app = create_app(repo, Settings.from_env({}, database_url=url, auth="off", mpi=MPI))
    return repo, app.state.ingest


def bench_csv(rows: int, batch: int) -> dict[str, float]:
    repo, service = service_on_fresh_sqlite()
    mapping = tomllib.loads(MAPPING.replace("BATCH", str(batch)))
    service.put_channel(channel_from_config({
        "id": "bench-csv", "organization": "Organization/c01", "transport": "file",
        "format": "csv", "mapping": mapping}))
    with repo.transaction() as tx:  # the mapping's organization, by identifier
        tx.create({"resourceType": "Organization",
                   "identifier": [{"system": "urn:huitong:org-code", "value": "C01"}]})
    data = generate(rows, "gb18030")
    started, cpu = time.perf_counter(), time.process_time()
    outcome = service.receive_file("bench-csv", data, name="bench.csv")
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    counts = repo.counts_by_type()
    repo.close()
    assert outcome.result == "created", outcome.report[:3]
    return {"rows": rows, "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
            "cpu_ms_per_row": round(cpu / rows * 1000, 3),
            "rows_per_s": round(rows / wall), "accepted": outcome.accepted,
            "resources": outcome.produced, "problems": len(outcome.report),
            "observations": counts.get("Observation", 0), "patients": counts.get("Patient", 0)}


def _backend_cpu(repo: object) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving this database (from /proc: the
    server runs on this machine), by pid; empty on SQLite."""
    if ENGINE == "sqlite":
        return {}
    rows = repo.query(  # type: ignore[attr-defined]
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for (pid,) in rows:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _instrument(mode: str) -> dict[str, float]:
    """Wrap the channel runtime's batch handler to count, in this process, the thread CPU
    of the handlers and the wall time they ran (summed, and while at least one ran)."""
    real = mqtt_runtime.handle_mqtt_batch
    lock = threading.Lock()
    stats = {"cpu": 0.0, "busy": 0.0, "any_busy": 0.0, "active": 0, "since": 0.0,
             "batches": 0, "most_at_once": 0}

    def handle(service: object, cid: str, batch: list[object]) -> list[str]:
        # CPU of the worker thread that takes each broker batch in (store, convert, write):
        # the machine is shared, so the wall clock alone says little.
        cpu, wall = time.thread_time(), time.perf_counter()
        with lock:
            if stats["active"] == 0:
                stats["since"] = wall
            stats["active"] += 1
            stats["most_at_once"] = max(stats["most_at_once"], stats["active"])
        try:
            return real(service, cid, batch, batched=mode == "batch")  # type: ignore[arg-type]
        finally:
            now = time.perf_counter()
            with lock:
                stats["cpu"] += time.thread_time() - cpu
                stats["busy"] += now - wall
                stats["batches"] += 1
                stats["active"] -= 1
                if stats["active"] == 0:
                    stats["any_busy"] += now - stats["since"]

    mqtt_runtime.handle_mqtt_batch = handle  # type: ignore[assignment]
    return stats


def serve_mqtt_worker(url: str, worker: int, in_flight: int, mode: str) -> None:
    """``--mqtt-worker``: one more server process on ``url`` taking its share of the MQTT
    channels (as a worker of ``huitong serve --workers N``). Says ``ready`` once subscribed,
    then ``handled N`` as its count grows; at a line on stdin it stops and prints its
    CPU and handler figures as JSON."""
    stats = _instrument(mode)
    repo = open_repository(url)
    app = create_app(repo, Settings.from_env({}, database_url=url, auth="off", mpi=MPI))

    async def run() -> dict[str, float]:
        stop = asyncio.Event()
        channels = start_mqtt_channels(app.state.ingest, stop, in_flight=in_flight,
                                       worker=worker)
        sub = next(iter(channels.subscribers.values()))
        await sub.ready.wait()
        print("ready", flush=True)
        cpu = time.process_time()
        told = 0
        asked = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
        while not asked.done():
            if sub.handled != told:
                told = sub.handled
                print(f"handled {told}", flush=True)
            await asyncio.sleep(0.005)
        cpu = time.process_time() - cpu
        stop.set()
        await channels.wait()
        return {"cpu": cpu, "handled": sub.handled, "reconnects": sub.reconnects}

    out = asyncio.run(run())
    repo.close()
    print(json.dumps({**out, **stats}), flush=True)


class _Worker:
    """Another server process (``serve_mqtt_worker``), seen from the benchmark."""

    def __init__(self, url: str, worker: int, in_flight: int, mode: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--mqtt-worker", str(worker),
             "--url", url, "--mpi", MPI, "--mqtt-in-flight", str(in_flight),
             "--mqtt-mode", mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.handled = 0
        self.result: dict[str, float] = {}
        if self.stdout.readline().strip() != "ready":
            raise RuntimeError("MQTT worker did not start")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.stdout:
            if line.startswith("handled "):
                self.handled = int(line.split()[1])
            elif line.startswith("{"):
                self.result = json.loads(line)

    def finish(self) -> dict[str, float]:
        self.stdin.write("stop\n")
        self.stdin.flush()
        self.reader.join(120)
        self.proc.wait(30)
        return self.result


def bench_mqtt(readings: int, window: int = 800, mode: str = "batch",
               in_flight: int = 1, workers: int = 1) -> dict[str, float]:
    """The server side of 10,000 readings: its clock runs from the go given to the publisher
    (its first publish) to the last acknowledged write; the publisher is a process of its
    own (``devices_mqtt.Publisher``: gateways are other machines), so the CPU and the GIL
    measured here are the server's. ``workers`` > 1: that many server processes share the
    channel's subscription (this one and ``workers - 1`` more, ``serve_mqtt_worker``)."""
    real = mqtt_runtime.handle_mqtt_batch
    stats = _instrument(mode)
    repo, service = service_on_fresh_sqlite()
    tag = uuid.uuid4().hex[:8]
    topic = f"huitong-bench/{tag}/readings"
    service.put_channel(channel_from_config({
        "id": "bench-mqtt", "organization": "Organization/c01", "transport": "mqtt",
        "format": "device", "topic": topic, "mapping": {"client_id": f"huitong-bench-{tag}"}}))
    with repo.transaction() as tx:  # the readings' patients must exist (conditional refs)
        for i in range(500):
            tx.create({"resourceType": "Patient", "identifier": [
                {"system": "urn:oid:2.16.156.10011.1.3", "value": f"11010119600305{i:04d}"}]})
    others = [_Worker(LAST_URL, w, in_flight, mode) for w in range(1, workers)]

    async def main() -> tuple[float, float, dict[str, object]]:
        stop = asyncio.Event()
        run = start_mqtt_channels(service, stop, in_flight=in_flight,
                                  worker=0 if workers > 1 else None)
        sub = run.subscribers["bench-mqtt"]
        await sub.ready.wait()
        pub = await asyncio.to_thread(Publisher, topic, readings, window)
        backends.update(await asyncio.to_thread(_backend_cpu, repo))
        cpu = time.process_time()
        started = time.perf_counter()
        pub.go()
        handled = 0
        while handled < readings:
            handled = sub.handled + sum(w.handled for w in others)
            pub.acknowledged(handled)  # Mosquitto drops QoS 1 beyond its queue
            await asyncio.sleep(0.005)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
        after = await asyncio.to_thread(_backend_cpu, repo)
        backends["run"] = sum(v - backends.get(k, 0.0) for k, v in after.items())
        published = await asyncio.to_thread(pub.finish)
        stop.set()
        await run.wait()
        results = [await asyncio.to_thread(w.finish) for w in others]
        per_process = [sub.handled, *(int(r.get("handled", 0)) for r in results)]
        for r in results:  # the other processes' figures added to this one's
            cpu += r.get("cpu", 0.0)
            for key in ("cpu", "busy", "any_busy", "batches"):
                stats[key] += r.get(key, 0.0)
            stats["most_at_once"] = max(stats["most_at_once"], r.get("most_at_once", 0))
        published["handled_per_process"] = per_process
        return wall, cpu, published

    backends: dict[object, float] = {}
    load = os.getloadavg()[0]
    wall, cpu, published = asyncio.run(main())
    mqtt_runtime.handle_mqtt_batch = real
    processed = repo.query("SELECT COUNT(*) FROM ingest_messages WHERE status = 'processed'")
    counts = repo.counts_by_type()
    repo.close()
    return {"mode": mode, "readings": readings, "workers": workers, "in_flight": in_flight,
            "seconds": round(wall, 2), "readings_per_s": round(readings / wall),
            "server_cpu_seconds": round(cpu, 2),
            "server_cpu_ms_per_reading": round(cpu / readings * 1000, 3),
            "handler_cpu_ms_per_reading": round(stats["cpu"] / readings * 1000, 3),
            # the database's backends for this database (the server's other half)
            "postgres_cpu_ms_per_reading": round(backends.get("run", 0.0) / readings * 1000,
                                                 3),
            "batches": stats["batches"], "most_batches_at_once": stats["most_at_once"],
            # handlers' wall time over the run's: the mean number of batches being written
            "mean_batches_at_once": round(stats["busy"] / wall, 2),
            # share of the run with no batch being written (per process, summed)
            "handler_idle_share": round(1 - stats["any_busy"] / wall / workers, 3),
            **published, "processed": int(processed[0][0]),
            "observations": counts.get("Observation", 0),
            "devices": counts.get("Device", 0),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    tune_collector(freeze=False)  # as `huitong` and the server run (huitong/runtime.py)
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--readings", type=int, default=10_000)
    ap.add_argument("--skip-mqtt", action="store_true")
    ap.add_argument("--skip-csv", action="store_true")
    ap.add_argument("--mpi", default="on", help="identity service in the write path: on|off")
    ap.add_argument("--engine", default="sqlite", choices=("sqlite", "postgresql"))
    ap.add_argument("--mqtt-mode", default="batch", choices=("batch", "single", "both"))
    ap.add_argument("--mqtt-in-flight", type=int, default=int(
        Settings.from_env({}, database_url="sqlite://").mqtt_in_flight),
        help="broker batches written at once (default: HUITONG_MQTT_IN_FLIGHT's default)")
    ap.add_argument("--mqtt-workers", type=int, default=1,
                    help="server processes sharing the MQTT subscription ($share)")
    ap.add_argument("--mqtt-worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    global MPI, ENGINE
    MPI, ENGINE = args.mpi, args.engine
    if args.mqtt_worker is not None:
        serve_mqtt_worker(args.url, args.mqtt_worker, args.mqtt_in_flight, args.mqtt_mode)
        return
    print(f"python {platform.python_version()} on {platform.machine()}, {ENGINE}, "
          f"{os.cpu_count()} cpus, load {os.getloadavg()}")
    if not args.skip_csv:
        print("csv end to end:", bench_csv(args.rows, args.batch), flush=True)
    if not args.skip_mqtt:
        modes = ("batch", "single") if args.mqtt_mode == "both" else (args.mqtt_mode,)
        for mode in modes:
            print("mqtt end to end:", bench_mqtt(args.readings, mode=mode,
                                                 in_flight=args.mqtt_in_flight,
                                                 workers=args.mqtt_workers), flush=True)


if __name__ == "__main__":
    main()
