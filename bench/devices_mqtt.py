"""Device readings over MQTT, end to end through the broker: publish gateway JSON readings
with QoS 1, receive them with :class:`MqttSubscriber` (manual acknowledgement after the
handler), and convert each to its transaction Bundle.

    python bench/devices_mqtt.py [--readings 10000] [--host 127.0.0.1] [--port 1883]
                                 [--batch 100] [--window 800] [--in-flight 1]

The repository write is not included (the channel runtime adds it). The publisher runs in a
process of its own (:class:`Publisher`), as gateways are other machines: in the subscriber's
process its CPU and its hold on the GIL would be charged to the server. It keeps at most
``--window`` readings ahead of the subscriber (the server tells it, through a pipe, how many
it has acknowledged): Mosquitto's default ``max_queued_messages`` (1000) drops QoS 1
messages queued beyond it for a connected but busy client, as a fleet of gateways each
sending a reading every few minutes never would. The clock runs from the go given to the
publisher (its first publish) to the last acknowledged conversion.

    python bench/devices_mqtt.py --publish TOPIC --readings N --window W
is that publisher process (ready / go / acknowledged counts on stdin, a JSON summary on
stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


def payload(i: int) -> bytes:
    return orjson.dumps({
        "device": {"serial": f"BPM-{i % 500:05d}", "type": "blood-pressure-monitor"},
        "patient": {"system": "urn:oid:2.16.156.10011.1.3",
                    "value": f"11010119600305{i % 500:04d}"},
        "time": f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}+08:00",
        "measurements": [
            {"type": "systolic", "value": 100 + i % 60, "unit": "mmHg"},
            {"type": "diastolic", "value": 60 + i % 40, "unit": "mmHg"},
            {"type": "heart-rate", "value": 55 + i % 50, "unit": "bpm"},
        ],
    })


def _follow(stdin: IO[str], acknowledged: list[int]) -> None:
    """The publisher's side of the pipe: each line is the server's acknowledged count."""
    for line in stdin:
        if line.strip():
            acknowledged[0] = int(line)


def publish_process(args: argparse.Namespace) -> None:
    """The gateways: connect, say ``ready``, wait for ``go``, publish ``--readings`` with
    QoS 1 at most ``--window`` ahead of the acknowledged count, then print a summary."""
    client = paho.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"bench-pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(args.host, args.port)
    client.loop_start()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    acknowledged = [0]
    follower = threading.Thread(target=_follow, args=(sys.stdin, acknowledged))
    follower.start()
    cpu = time.process_time()
    infos = []
    for i in range(args.readings):
        while i - acknowledged[0] >= args.window:
            time.sleep(0.001)
        infos.append(client.publish(args.publish, payload(i), qos=1))
    for info in infos:
        info.wait_for_publish()
    cpu = time.process_time() - cpu
    client.disconnect()
    client.loop_stop()
    follower.join()  # until the server closes the pipe: it may still be writing counts
    print(json.dumps({"published": len(infos), "publisher_cpu_seconds": round(cpu, 2)}),
          flush=True)


class Publisher:
    """The publisher process, seen from the server's side."""

    def __init__(self, topic: str, readings: int, window: int, host: str = "127.0.0.1",
                 port: int = 1883) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--publish", topic,
             "--readings", str(readings), "--window", str(window), "--host", host,
             "--port", str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.told = 0
        if self.stdout.readline().strip() != "ready":
            raise RuntimeError("publisher did not start")

    def go(self) -> None:
        """Start publishing (the clock starts here)."""
        self.stdin.write("go\n")
        self.stdin.flush()

    def acknowledged(self, count: int) -> None:
        """Tell the publisher how many readings the server has acknowledged."""
        if count != self.told:
            self.told = count
            self.stdin.write(f"{count}\n")
            self.stdin.flush()

    def finish(self, timeout: float = 60) -> dict[str, object]:
        self.stdin.close()
        out = self.stdout.read()
        self.proc.wait(timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


async def main(args: argparse.Namespace) -> dict[str, object]:
    from huitong.ingest.devices import (
        DeviceContext,
        MqttMessage,
        MqttSettings,
        MqttSubscriber,
        convert_gateway_payload,
    )

    tag = uuid.uuid4().hex[:8]
    topic = f"huitong-bench/{tag}/readings"
    ctx = DeviceContext()
    totals = {"observations": 0, "problems": 0}

    async def handler(batch: Sequence[MqttMessage]) -> None:
        for m in batch:
            conv = convert_gateway_payload(m.payload, ctx)
            totals["observations"] += len(conv.entries) - 1  # the Device entry
            totals["problems"] += len(conv.problems)

    stop = asyncio.Event()
    sub = MqttSubscriber(MqttSettings(topic, f"bench-sub-{tag}", host=args.host, port=args.port,
                                      max_batch=args.batch, in_flight=args.in_flight), handler)
    task = asyncio.ensure_future(sub.run(stop))
    await asyncio.wait_for(sub.ready.wait(), 10)
    pub = await asyncio.to_thread(Publisher, topic, args.readings, args.window, args.host,
                                  args.port)
    cpu = time.process_time()
    t0 = time.perf_counter()
    pub.go()
    async with asyncio.timeout(300):
        while sub.handled < args.readings:
            pub.acknowledged(sub.handled)
            await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu
    stop.set()
    await task
    published = await asyncio.to_thread(pub.finish)
    return {
        "readings": sub.handled, "observations": totals["observations"],
        "problems": totals["problems"], "seconds": round(elapsed, 2),
        "readings_per_s": round(sub.handled / elapsed), "reconnects": sub.reconnects,
        "subscriber_cpu_ms_per_reading": round(cpu / args.readings * 1000, 3),
        **published, "batch": args.batch, "window": args.window,
        "in_flight": args.in_flight, "python": platform.python_version(),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=10_000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--window", type=int, default=800)
    ap.add_argument("--in-flight", type=int, default=1)
    ap.add_argument("--publish", metavar="TOPIC", help=argparse.SUPPRESS)
    cli = ap.parse_args()
    if cli.publish:
        publish_process(cli)
    else:
        print(json.dumps(asyncio.run(main(cli)), indent=2))
