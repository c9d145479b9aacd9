"""Device payloads in groups (an MQTT batch) through ``IngestService.receive_devices`` on the
real repository, both engines: stored raw in one commit, written in one transaction, yet
each payload gets the outcome it would get alone — a refused one is reported on its own and
the others are kept; repeats inside the group and resends are never written twice."""

from __future__ import annotations

import orjson
import pytest
from feed_intake_helpers import (
    KNOWN,
    RESIDENT,
    Client,
    known_resident_client,
    put_channel,
)

from huitong.ingest.message_store import MessageQuery, MessageStatus

UNKNOWN = "11010119990101999X"


@pytest.fixture
def client(repo):
    c = known_resident_client(repo, format="device")
    yield c
    c.close()


def reading(minute: int, idcard: str = KNOWN) -> bytes:
    return orjson.dumps({
        "device": {"serial": "BPM-0001", "type": "blood-pressure-monitor"},
        "patient": {"system": RESIDENT, "value": idcard},
        "time": f"2024-03-05T08:{minute:02d}:00+08:00",
        "measurements": [{"type": "systolic", "value": 128, "unit": "mmHg"},
                         {"type": "diastolic", "value": 82, "unit": "mmHg"}],
    })


class Counting:
    """Counts the feed intake's transactions (calls of the executor)."""

    def __init__(self, service) -> None:
        self.calls = 0
        inner = service.feeds.submit

        def submit(bundle, before_commit):
            self.calls += 1
            return inner(bundle, before_commit)

        service.feeds.submit = submit


def _panels(client: Client) -> list[str]:
    return sorted(p["effectiveDateTime"]
                  for p in client.search("Observation?code=http://loinc.org|85354-9"))


def test_a_group_is_written_in_one_transaction(client):
    service = client.app.state.ingest
    calls = Counting(service)
    outcomes = service.receive_devices("home-bp", [reading(m) for m in range(5)])
    assert [o.result for o in outcomes] == ["created"] * 5
    assert calls.calls == 1
    assert len(_panels(client)) == 5
    found, total = service.store.search(MessageQuery(channel="home-bp"))
    assert total == 5 and {m.status for m in found} == {MessageStatus.PROCESSED}
    # Each message keeps its own share of what was written: its panel and the device.
    panels = set()
    for m in found:
        assert [p.split("/")[0] for p in m.produced] == ["Device", "Observation"], m.produced
        panels.add(m.produced[1])
    assert len(panels) == 5


@pytest.mark.parametrize(
    ("case", "payloads", "results", "panels"),
    [
        ("repeat and resend", [reading(1), reading(1), reading(2)],
         ["created", "duplicate", "created"], 2),
        ("refused patient", [reading(1), reading(2, UNKNOWN), reading(3)],
         ["created", "error", "created"], 2),
        ("not json", [reading(1), b"{not json", reading(3)],
         ["created", "error", "created"], 2),
    ],
)
def test_each_payload_gets_its_own_outcome(client, case, payloads, results, panels):
    service = client.app.state.ingest
    outcomes = service.receive_devices("home-bp", payloads)
    assert [o.result for o in outcomes] == results, case
    assert len(_panels(client)) == panels
    # After a refused group was written again one by one, every reference still resolves
    # (none points at an id of the rolled-back attempt).
    for panel in client.search("Observation?code=http://loinc.org|85354-9"):
        for ref in (panel["device"]["reference"], panel["subject"]["reference"]):
            assert client.get(f"/fhir/{ref}").status_code == 200, (case, ref)
    again = service.receive_devices("home-bp", payloads)  # a redelivery of the whole batch
    assert [o.result for o in again if o.result == "created"] == [], case
    assert len(_panels(client)) == panels
    for outcome in outcomes:
        if outcome.result == "error":
            stored = service.store.get(outcome.messages[0].id)
            assert stored.status is MessageStatus.ERROR and stored.errors
            assert UNKNOWN not in orjson.dumps(stored.errors).decode()


def _kept(store, message_id: int) -> tuple:
    """What the store keeps of a message, but what names its row (id, channel, times)."""
    m = store.get(message_id)
    return (m.status, m.attempts, m.ack_code, m.errors, m.warnings,
            [p.split("/")[0] for p in m.produced], m.processed_at is not None,
            m.next_attempt_at, store.patients_of(message_id))


def test_a_group_is_marked_as_each_payload_alone(client):
    """The group's messages are marked processed in a few statements
    (``record_processed_many``), the lone payload's by ``record_processed``: the stored
    messages must not tell which path marked them."""
    service = client.app.state.ingest
    put_channel(client, "home-bp-2", format="device")
    readings = [reading(m) for m in range(8)]
    # The same reading twice in one payload: a warning kept on its message.
    readings[3] = orjson.dumps([orjson.loads(readings[3])] * 2)
    grouped = service.receive_devices("home-bp", readings)
    alone = [service.receive_device("home-bp-2", r) for r in readings]
    assert [o.result for o in grouped] == ["created"] * len(readings)
    assert [o.result for o in alone] == ["created"] * len(readings)
    assert grouped[3].report and grouped[3].report[0]["severity"] == "warning"
    for g, a in zip(grouped, alone, strict=True):
        assert g.produced == a.produced
        assert _kept(service.store, g.messages[0].id) == _kept(service.store,
                                                               a.messages[0].id)
    # Redelivered after a failed attempt (not fresh, attempts 1): marked again in a group.
    again = [m.messages[0].id for m in grouped]
    with service.store.repo.transaction() as tx:
        tx.execute("UPDATE ingest_messages SET status = 'queued', attempts = 1 WHERE id IN "
                   f"({', '.join('?' * len(again))})", again)
    redelivered = service.receive_devices("home-bp", readings)
    assert [o.result for o in redelivered] == ["created"] * len(readings)
    for message_id in again:
        kept = _kept(service.store, message_id)
        assert kept[:2] == (MessageStatus.PROCESSED, 2), kept
