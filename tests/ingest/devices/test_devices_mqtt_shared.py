"""Server workers sharing an MQTT device channel (``huitong serve --workers N``), against the
real Mosquitto broker on 127.0.0.1:1883: each worker has a client id of its own and a share
of one subscription (MQTT 5 ``$share``), so every reading is handled by exactly one of them
and nobody takes anybody's session; a restarted worker gets back what it had not
acknowledged."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from test_devices_mqtt import _broker_up, send, start, until

from huitong.ingest.channels import channel_from_config
from huitong.ingest.devices import MqttMessage
from huitong.ingest.mqtt_runtime import mqtt_settings

pytestmark = pytest.mark.skipif(not _broker_up(), reason="Mosquitto is not running on :1883")


def channel(topic: str, client_id: str):  # type: ignore[no-untyped-def]
    return channel_from_config({
        "id": "home-bp", "organization": "Organization/c01", "transport": "mqtt",
        "format": "device", "topic": topic, "mapping": {"client_id": client_id}})


def test_one_process_keeps_its_plain_subscription_and_client_id() -> None:
    s = mqtt_settings(channel("huitong/c01/readings/#", "huitong-home-bp"))
    assert (s.client_id, s.subscription) == ("huitong-home-bp", "huitong/c01/readings/#")
    w = mqtt_settings(channel("huitong/c01/readings/#", "huitong-home-bp"), worker=1)
    assert w.client_id == "huitong-home-bp-w1"
    assert w.subscription == "$share/huitong-home-bp/huitong/c01/readings/#"
    odd = mqtt_settings(channel("t", "a/b+c#"), worker=0)
    assert odd.subscription == "$share/a_b_c_/t"


def test_workers_share_the_readings_each_exactly_once() -> None:
    tag = uuid.uuid4().hex[:10]
    topic, client_id = f"huitong-test/{tag}/readings", f"huitong-test-{tag}"
    ch = channel(topic, client_id)

    async def main() -> None:
        got: dict[int, list[bytes]] = {0: [], 1: []}

        def handler(worker: int):  # type: ignore[no-untyped-def]
            async def handle(batch: Sequence[MqttMessage]) -> None:
                got[worker].extend(m.payload for m in batch)
            return handle

        stop = asyncio.Event()
        subs = [start(mqtt_settings(ch, worker=w), handler(w), stop) for w in (0, 1)]
        await until(lambda: all(s.ready.is_set() for s, _ in subs), "both subscribed")
        sent = [f"m{i}".encode() for i in range(40)]
        await asyncio.to_thread(send, topic, sent)
        await until(lambda: len(got[0]) + len(got[1]) >= 40, "all handled")
        await asyncio.sleep(0.3)  # nothing comes twice
        assert sorted(got[0] + got[1]) == sorted(sent)
        assert got[0] and got[1]  # each took a share
        # neither took the other's session (a shared client id would, again and again)
        assert [s.reconnects for s, _ in subs] == [0, 0]
        stop.set()
        await asyncio.gather(*(t for _, t in subs))

    asyncio.run(main())


def test_a_restarted_worker_gets_back_what_it_had_not_acknowledged() -> None:
    tag = uuid.uuid4().hex[:10]
    topic, client_id = f"huitong-test/{tag}/readings", f"huitong-test-{tag}"
    ch = channel(topic, client_id)

    async def main() -> None:
        held: list[bytes] = []
        other: list[bytes] = []
        never = asyncio.Event()

        async def stuck(batch: Sequence[MqttMessage]) -> None:
            held.extend(m.payload for m in batch)
            await never.wait()  # worker 1 dies while writing

        async def fine(batch: Sequence[MqttMessage]) -> None:
            other.extend(m.payload for m in batch)

        stop = asyncio.Event()
        sub0, task0 = start(mqtt_settings(ch, worker=0), fine, stop)
        sub1, task1 = start(mqtt_settings(ch, worker=1), stuck, asyncio.Event())
        await until(lambda: sub0.ready.is_set() and sub1.ready.is_set(), "both subscribed")
        sent = {f"m{i}".encode() for i in range(10)}
        await asyncio.to_thread(send, topic, sorted(sent))
        # worker 1 is stuck on its first batch; the rest of its share waits unacknowledged
        await until(lambda: bool(held), "worker 1 writing")
        await asyncio.sleep(0.3)
        task1.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task1
        lost = list(held)
        again: list[bytes] = []

        async def collect(batch: Sequence[MqttMessage]) -> None:
            again.extend(m.payload for m in batch)

        _, task1b = start(mqtt_settings(ch, worker=1), collect, stop)
        # what it had in hand comes back to it, and no reading is lost or handled twice
        await until(lambda: set(other) | set(again) == sent, "every reading handled")
        assert set(lost) <= set(again)
        assert set(other).isdisjoint(again)
        stop.set()
        await asyncio.gather(task0, task1b)

    asyncio.run(main())


@pytest.mark.parametrize(("env", "expected"), [
    ({}, {"in_flight": 2, "worker": None}),
    ({"HUITONG_WORKER_INDEX": "1", "HUITONG_MQTT_IN_FLIGHT": "3"}, {"in_flight": 3, "worker": 1}),
])
def test_the_server_starts_its_channels_with_its_worker_number(tmp_path, monkeypatch, env,
                                                               expected) -> None:
    from huitong.config import Settings
    from huitong.ingest import mqtt_runtime
    from huitong.server import create_app
    from huitong.store import open_repository

    seen: list[dict[str, object]] = []
    real = mqtt_runtime.start_mqtt_channels

    def spy(service, stop, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs)
        return real(service, stop, **kwargs)

    monkeypatch.setattr(mqtt_runtime, "start_mqtt_channels", spy)
    repo = open_repository(f"sqlite:///{tmp_path / 'w.db'}")
    app = create_app(repo, Settings.from_env(env, database_url="unused", auth="off"))

    async def main() -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(main())
    repo.close()
    assert seen == [expected]
