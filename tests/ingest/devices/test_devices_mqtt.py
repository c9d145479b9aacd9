"""The MQTT subscriber against the real Mosquitto broker on 127.0.0.1:1883: QoS 1, ack after
the handler, redelivery after a handler failure or a crash, reconnect with back-off."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Sequence

import paho.mqtt.client as paho
import paho.mqtt.publish as publish
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from huitong.ingest.devices import MqttMessage, MqttSettings, MqttSubscriber

BROKER = ("127.0.0.1", 1883)
WAIT = 20.0  # generous guard against a hang; never a performance assertion


def _broker_up() -> bool:
    try:
        socket.create_connection(BROKER, timeout=1).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _broker_up(), reason="Mosquitto is not running on :1883")


def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:10]
    return f"huitong-test/{tag}/readings", f"huitong-test-{tag}"


def send(topic: str, payloads: list[bytes]) -> None:
    publish.multiple([{"topic": topic, "payload": p, "qos": 1} for p in payloads],
                     hostname=BROKER[0], port=BROKER[1])


async def until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.02)


def start(settings: MqttSettings, handler, stop: asyncio.Event):  # type: ignore[no-untyped-def]
    sub = MqttSubscriber(settings, handler)
    return sub, asyncio.ensure_future(sub.run(stop))


def test_messages_are_handled_in_order_and_acknowledged() -> None:
    topic, client = names()

    async def main() -> None:
        got: list[MqttMessage] = []

        async def handler(batch: Sequence[MqttMessage]) -> None:
            got.extend(batch)

        stop = asyncio.Event()
        sub, task = start(MqttSettings(topic, client, max_batch=7), handler, stop)
        await until(sub.ready.is_set, "subscribed")
        await asyncio.to_thread(send, topic, [f"m{i}".encode() for i in range(40)])
        await until(lambda: len(got) == 40, "40 handled")
        assert [m.payload for m in got] == [f"m{i}".encode() for i in range(40)]
        assert all(m.qos == 1 and not m.redelivered for m in got)
        stop.set()
        await task
        # a new session with the same id gets only new messages: the old ones were acked
        got.clear()
        stop2 = asyncio.Event()
        sub2, task2 = start(MqttSettings(topic, client), handler, stop2)
        await until(sub2.ready.is_set, "resubscribed")
        await asyncio.to_thread(send, topic, [b"marker"])
        await until(lambda: bool(got), "marker")
        assert [m.payload for m in got] == [b"marker"]
        stop2.set()
        await task2

    asyncio.run(main())


def test_a_failing_handler_gets_the_message_again() -> None:
    topic, client = names()

    async def main() -> None:
        calls: list[list[bytes]] = []

        async def handler(batch: Sequence[MqttMessage]) -> None:
            calls.append([m.payload for m in batch])
            if len(calls) == 1:
                raise RuntimeError("database unavailable")

        stop = asyncio.Event()
        sub, task = start(MqttSettings(topic, client, max_batch=1, reconnect_min=0.05),
                          handler, stop)
        await until(sub.ready.is_set, "subscribed")
        await asyncio.to_thread(send, topic, [b"reading-1"])
        await until(lambda: len(calls) >= 2, "redelivery")
        assert calls[0] == calls[1] == [b"reading-1"]
        assert sub.reconnects >= 1 and sub.handled >= 1
        stop.set()
        await task

    asyncio.run(main())


def test_a_crash_before_the_ack_means_redelivery_to_the_next_process() -> None:
    topic, client = names()

    async def main() -> None:
        seen: list[MqttMessage] = []
        never = asyncio.Event()

        async def stuck(batch: Sequence[MqttMessage]) -> None:
            seen.extend(batch)
            await never.wait()  # the process dies while converting

        sub, task = start(MqttSettings(topic, client, max_batch=1), stuck, asyncio.Event())
        await until(sub.ready.is_set, "subscribed")
        await asyncio.to_thread(send, topic, [b"a", b"b"])
        await until(lambda: bool(seen), "first message in hand")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sub.handled == 0

        got: list[MqttMessage] = []

        async def handler(batch: Sequence[MqttMessage]) -> None:
            got.extend(batch)

        stop = asyncio.Event()
        _, task2 = start(MqttSettings(topic, client), handler, stop)
        await until(lambda: len(got) >= 2, "both redelivered")
        assert [m.payload for m in got][:2] == [b"a", b"b"]
        assert got[0].redelivered
        stop.set()
        await task2

    asyncio.run(main())


def test_unreachable_broker_is_retried_with_back_off_until_stopped() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the with-block ends: nothing listens

    async def main() -> None:
        async def handler(batch: Sequence[MqttMessage]) -> None:
            raise AssertionError("no messages without a broker")

        stop = asyncio.Event()
        settings = MqttSettings("t", "huitong-test-nobroker", port=port, reconnect_min=0.01,
                                reconnect_max=0.05)
        sub, task = start(settings, handler, stop)
        await until(lambda: sub.reconnects >= 3, "three retries")
        assert not sub.ready.is_set()
        stop.set()
        await task

    asyncio.run(main())


def test_a_dropped_connection_is_reopened_and_nothing_is_lost() -> None:
    topic, client = names()

    def take_over_session() -> None:
        # the broker closes an existing connection when another connects with its client id
        # (MQTT 3.1.1 §3.1.4); clean_session=False keeps the session and its queue
        intruder = paho.Client(CallbackAPIVersion.VERSION2, client_id=client,
                               clean_session=False, manual_ack=True)
        intruder.connect(*BROKER)
        intruder.loop_start()
        intruder.disconnect()
        intruder.loop_stop()
        # sent while our subscriber may be away: the session keeps it for the reconnect
        publish.single(topic, b"while-away", qos=1, hostname=BROKER[0], port=BROKER[1])

    async def main() -> None:
        got: list[bytes] = []

        async def handler(batch: Sequence[MqttMessage]) -> None:
            got.extend(m.payload for m in batch)

        stop = asyncio.Event()
        sub, task = start(MqttSettings(topic, client, reconnect_min=0.3), handler, stop)
        await until(sub.ready.is_set, "subscribed")
        await asyncio.to_thread(send, topic, [b"before"])
        await until(lambda: got == [b"before"], "first message")
        await asyncio.to_thread(take_over_session)
        await until(lambda: sub.reconnects >= 1 and sub.ready.is_set(), "reconnected")
        await asyncio.to_thread(send, topic, [b"after"])
        await until(lambda: b"after" in got, "message after reconnect")
        assert got.count(b"while-away") >= 1  # kept by the broker, delivered after reconnect
        stop.set()
        await task

    asyncio.run(main())


def test_batches_are_not_capped_by_the_brokers_default_window() -> None:
    """Messages are acknowledged after their batch is written, so the number the broker may
    have unacknowledged bounds a batch. The subscriber asks for a large window (MQTT 5
    Receive Maximum): under MQTT 3.1.1 Mosquitto sends 20 at a time, which made every
    transaction of readings at most 20 long."""
    topic, client = names()

    async def main() -> None:
        sizes: list[int] = []
        first = asyncio.Event()

        async def handler(batch: Sequence[MqttMessage]) -> None:
            sizes.append(len(batch))
            if len(sizes) == 1:
                first.set()
                await asyncio.sleep(0.5)  # a slow write: the rest arrive meanwhile

        stop = asyncio.Event()
        sub, task = start(MqttSettings(topic, client, max_batch=100, receive_maximum=500),
                          handler, stop)
        await until(sub.ready.is_set, "subscribed")
        await asyncio.to_thread(send, topic, [b"first"])
        await until(first.is_set, "first batch")
        await asyncio.to_thread(send, topic, [f"m{i}".encode() for i in range(150)])
        await until(lambda: sum(sizes) == 151, "all handled")
        assert max(sizes[1:]) == 100, sizes  # a full batch, not 20
        stop.set()
        await task

    asyncio.run(main())
