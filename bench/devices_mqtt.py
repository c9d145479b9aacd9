"""Device readings over MQTT, end to end through the broker: publish gateway JSON readings
with QoS 1, receive them with :class:`MqttSubscriber` (manual acknowledgement after the
handler), and convert each to its transaction Bundle.

    python bench/devices_mqtt.py [--readings 10000] [--host 127.0.0.1] [--port 1883]
                                 [--batch 100] [--window 800]

The repository write is not included (the channel runtime adds it). The publisher keeps at
most ``--window`` readings ahead of the subscriber: Mosquitto's default
``max_queued_messages`` (1000) drops QoS 1 messages queued beyond it for a connected but busy
client, as a fleet of gateways each sending a reading every few minutes never would. The
clock runs from the first publish to the last acknowledged conversion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import threading
import time
import uuid
from collections.abc import Sequence

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from huitong.ingest.devices import (
    DeviceContext,
    MqttMessage,
    MqttSettings,
    MqttSubscriber,
    convert_gateway_payload,
)


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


def publisher(args: argparse.Namespace, topic: str, progress: list[int],
              started: threading.Event) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(args.host, args.port)
    client.loop_start()
    started.set()
    infos = []
    for i in range(args.readings):
        while i - progress[0] >= args.window:
            time.sleep(0.001)
        infos.append(client.publish(topic, payload(i), qos=1))
    for info in infos:
        info.wait_for_publish()
    client.disconnect()
    client.loop_stop()


async def main(args: argparse.Namespace) -> dict[str, object]:
    tag = uuid.uuid4().hex[:8]
    topic = f"huitong-bench/{tag}/readings"
    ctx = DeviceContext()
    progress = [0]
    totals = {"observations": 0, "problems": 0}
    done = asyncio.Event()

    async def handler(batch: Sequence[MqttMessage]) -> None:
        for m in batch:
            conv = convert_gateway_payload(m.payload, ctx)
            totals["observations"] += len(conv.entries) - 1  # the Device entry
            totals["problems"] += len(conv.problems)
        progress[0] += len(batch)
        if progress[0] >= args.readings:
            done.set()

    stop = asyncio.Event()
    sub = MqttSubscriber(MqttSettings(topic, f"bench-sub-{tag}", host=args.host, port=args.port,
                                      max_batch=args.batch), handler)
    task = asyncio.ensure_future(sub.run(stop))
    await asyncio.wait_for(sub.ready.wait(), 10)
    started = threading.Event()
    t0 = time.perf_counter()
    pub = threading.Thread(target=publisher, args=(args, topic, progress, started), daemon=True)
    pub.start()
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - t0
    stop.set()
    await task
    pub.join(10)
    return {
        "readings": progress[0], "observations": totals["observations"],
        "problems": totals["problems"], "seconds": round(elapsed, 2),
        "readings_per_s": round(progress[0] / elapsed), "reconnects": sub.reconnects,
        "batch": args.batch, "window": args.window, "python": platform.python_version(),
        "paho_mqtt": paho.__version__ if hasattr(paho, "__version__") else "2.x",
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=10_000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--window", type=int, default=800)
    print(json.dumps(asyncio.run(main(ap.parse_args())), indent=2))
