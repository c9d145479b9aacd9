"""Feeds END TO END into a fresh SQLite database: a generated CSV export through the csv
channel (store raw → convert → write batch by batch through the FHIR transaction executor →
status and report), and device readings published over MQTT through the mqtt channel runtime
(broker → store → convert → write → PUBACK).

    python bench/feeds_end_to_end.py [--rows 100000] [--readings 10000] [--skip-mqtt]
        [--engine sqlite|postgresql] [--mqtt-mode batch|single|both]

``--engine postgresql`` creates a fresh database on the local server (as bench/_server.py
does). Identity, quality and translation run in the write path as in production (their
settings' defaults). ``--mqtt-mode both`` measures the batched MQTT path (a broker batch
stored in one commit and written in one transaction) beside the one-by-one path, each on
its own fresh database.

Targets (issue 3): 100,000-row CSV < 60 s; 10,000 MQTT readings < 20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import fresh_database
from devices_mqtt import payload
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


def service_on_fresh_sqlite():  # type: ignore[no-untyped-def]
    """A fresh database on ENGINE (the name is historical) and the app's ingest service."""
    if ENGINE == "sqlite":
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='huitong-bench-')) / 'feeds.db'}"
    else:
        url = fresh_database("postgresql")
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


def bench_mqtt(readings: int, window: int = 800, mode: str = "batch") -> dict[str, float]:
    real = mqtt_runtime.handle_mqtt_batch
    handler_cpu = [0.0]

    def handle(service: object, cid: str, batch: list[object]) -> list[str]:
        # CPU of the worker thread that takes each broker batch in (store, convert, write):
        # the machine is shared, so the wall clock alone says little.
        started = time.thread_time()
        try:
            return real(service, cid, batch, batched=mode == "batch")  # type: ignore[arg-type]
        finally:
            handler_cpu[0] += time.thread_time() - started

    mqtt_runtime.handle_mqtt_batch = handle  # type: ignore[assignment]
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

    async def main() -> float:
        stop = asyncio.Event()
        run = start_mqtt_channels(service, stop)
        sub = run.subscribers["bench-mqtt"]
        await sub.ready.wait()
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{tag}")
        pub.max_inflight_messages_set(100)
        pub.connect("127.0.0.1", 1883)
        pub.loop_start()

        def publish() -> None:
            for i in range(readings):
                while i - sub.handled > window:  # Mosquitto drops QoS 1 beyond its queue
                    time.sleep(0.002)
                pub.publish(topic, payload(i), qos=1)

        started = time.perf_counter()
        thread = threading.Thread(target=publish)
        thread.start()
        while sub.handled < readings:
            await asyncio.sleep(0.01)
        wall = time.perf_counter() - started
        thread.join()
        pub.loop_stop()
        pub.disconnect()
        stop.set()
        await run.wait()
        return wall

    load = os.getloadavg()[0]
    cpu = time.process_time()
    wall = asyncio.run(main())
    cpu = time.process_time() - cpu
    mqtt_runtime.handle_mqtt_batch = real
    processed = repo.query("SELECT COUNT(*) FROM ingest_messages WHERE status = 'processed'")
    counts = repo.counts_by_type()
    repo.close()
    return {"mode": mode, "readings": readings, "seconds": round(wall, 2),
            "readings_per_s": round(readings / wall), "cpu_seconds": round(cpu, 2),
            "handler_cpu_ms_per_reading": round(handler_cpu[0] / readings * 1000, 3),
            "processed": int(processed[0][0]),
            "observations": counts.get("Observation", 0),
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
    args = ap.parse_args()
    global MPI, ENGINE
    MPI, ENGINE = args.mpi, args.engine
    print(f"python {platform.python_version()} on {platform.machine()}, {ENGINE}, "
          f"{os.cpu_count()} cpus, load {os.getloadavg()}")
    if not args.skip_csv:
        print("csv end to end:", bench_csv(args.rows, args.batch), flush=True)
    if not args.skip_mqtt:
        modes = ("batch", "single") if args.mqtt_mode == "both" else (args.mqtt_mode,)
        for mode in modes:
            print("mqtt end to end:", bench_mqtt(args.readings, mode=mode), flush=True)


if __name__ == "__main__":
    main()
