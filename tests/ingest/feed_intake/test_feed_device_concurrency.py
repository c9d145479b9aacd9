"""Broker batches written at the same time (``HUITONG_MQTT_IN_FLIGHT`` > 1, or several server
workers sharing a subscription) on PostgreSQL: two batches naming a Device not yet stored
create it once (its conditional create waits on the other's lock and then finds it), and a
reading that comes in both batches is written once, whichever commits first."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest
from feed_intake_helpers import (
    KNOWN,
    RESIDENT,
    known_resident_client,
)

from huitong.ingest.devices import MqttMessage
from huitong.ingest.message_store import MessageQuery, MessageStatus
from huitong.ingest.mqtt_runtime import handle_mqtt_batch


@pytest.fixture
def client(pg_repo):
    c = known_resident_client(pg_repo, format="device", transport="mqtt", topic="t/#")
    yield c
    c.close()


def reading(serial: str, minute: int) -> bytes:
    return orjson.dumps({
        "device": {"serial": serial, "type": "blood-pressure-monitor"},
        "patient": {"system": RESIDENT, "value": KNOWN},
        "time": f"2024-03-05T08:{minute:02d}:00+08:00",
        "measurements": [{"type": "systolic", "value": 128, "unit": "mmHg"},
                         {"type": "diastolic", "value": 82, "unit": "mmHg"}],
    })


def batch(payloads: list[bytes]) -> list[MqttMessage]:
    return [MqttMessage("t/r", p, n, 1, False) for n, p in enumerate(payloads)]


def at_once(service: Any, batches: list[list[MqttMessage]]) -> list[list[str]]:
    """Each batch handled by its own thread, all released together."""
    gate = threading.Barrier(len(batches))
    results: list[list[str] | BaseException] = [[] for _ in batches]

    def run(n: int) -> None:
        gate.wait()
        try:
            results[n] = handle_mqtt_batch(service, "home-bp", batches[n])
        except BaseException as exc:  # reported by the assertion below
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, list) for r in results), results
    return results  # type: ignore[return-value]


def test_two_batches_naming_a_new_device_create_it_once(client):
    service = client.app.state.ingest
    for round_ in range(3):  # a few rounds: the race need not be lost every time
        serial = f"BPM-NEW-{round_}"
        first = [reading(serial, m) for m in range(0, 10)]
        second = [reading(serial, m) for m in range(10, 20)]
        results = at_once(service, [batch(first), batch(second)])
        assert results == [["created"] * 10, ["created"] * 10]
        devices = client.search(f"Device?identifier={serial}")
        assert len(devices) == 1, round_
        panels = client.search(f"Observation?device=Device/{devices[0]['id']}&_count=100")
        assert len(panels) == 20, round_


def test_a_reading_in_two_batches_at_once_is_written_once(client):
    service = client.app.state.ingest
    shared = reading("BPM-0001", 30)
    results = at_once(service, [batch([reading("BPM-0001", 1), shared]),
                                batch([shared, reading("BPM-0001", 2)])])
    # the resent reading is new in one batch and a duplicate (or written again to no
    # effect) in the other; never two Observations
    assert results[0][0] == "created" and results[1][1] == "created"
    assert {results[0][1], results[1][0]} <= {"created", "duplicate"}
    panels = client.search("Observation?code=http://loinc.org|85354-9&_count=100")
    assert sorted(p["effectiveDateTime"] for p in panels) == [
        "2024-03-05T08:01:00+08:00", "2024-03-05T08:02:00+08:00",
        "2024-03-05T08:30:00+08:00"]
    found, total = service.store.search(MessageQuery(channel="home-bp"))
    assert total == 3 and {m.status for m in found} == {MessageStatus.PROCESSED}
