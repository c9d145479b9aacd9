"""An asyncio MQTT subscriber that acknowledges a message only after its handler returned.

Built on paho-mqtt (>= 2), whose ``manual_ack`` mode lets the application send the PUBACK
itself. It speaks MQTT 5 (https://docs.oasis-open.org/mqtt/mqtt/v5.0/mqtt-v5.0.html):

* the session is persistent (``clean_start=False``, a session expiry interval and a fixed
  client id) and the subscription QoS 1, so the broker keeps every message not yet
  acknowledged and sends it again when we reconnect — a handler that fails, or a process
  that dies mid-way, loses nothing (delivery is at least once; the device converters are
  idempotent);
* the CONNECT says how many unacknowledged messages the broker may send at once (Receive
  Maximum, §3.1.2.11.3). Messages are acknowledged only once their batch is committed, so
  this window bounds the batch: under MQTT 3.1.1 Mosquitto sends 20 at a time, and every
  transaction carried at most 20 readings;
* messages are handed to ``handler`` in arrival order, in batches of up to ``max_batch``
  that have already arrived (never waiting to fill one), and acknowledged in that order
  after it returns, as the protocol requires (§4.6). Up to ``in_flight`` batches are
  handled at once (the next batch is taken while earlier ones are still being written),
  but a batch is acknowledged only once it and every batch before it have returned, so
  the PUBACKs still leave in arrival order;
* if the handler raises, nothing of that batch (nor of any batch after it) is
  acknowledged: the batches still being handled are let finish, then the connection is
  dropped and re-opened after a back-off, and the broker redelivers. The handler should
  therefore raise only for transient failures (database unavailable); a payload that can never be
  converted belongs in the message store's error queue, with a normal return;
* a lost connection is re-established with exponential back-off (``reconnect_min`` doubling
  to ``reconnect_max``, with jitter).

The paho network loop runs in its own thread; messages cross to the event loop through
``call_soon_threadsafe``. Payloads are never logged (they carry health data).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["MqttMessage", "MqttSettings", "MqttSubscriber"]

log = logging.getLogger(__name__)

_CLOSE_WAIT = 2.0  # seconds a closing session waits for its queued packets to be written


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where and how to subscribe. ``client_id`` names the persistent session: keep it
    stable across restarts, or unacknowledged messages are not redelivered."""

    topic: str
    client_id: str
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    keepalive: int = 30
    max_batch: int = 100
    # unacknowledged messages the broker may send at once (MQTT 5 Receive Maximum): a few
    # batches, so the next one is already here while one is being written
    receive_maximum: int = 1000
    # batches handled at once (each its own handler call, e.g. its own database
    # transaction): while one waits on the database the next is converted and sent; 1
    # handles one batch at a time
    in_flight: int = 1
    # MQTT 5 shared subscription (§4.8.2): subscribe to ``$share/<group>/<topic>``, so the
    # broker hands each message to ONE of the clients of the group (the processes of a
    # server with several workers, each with its own client id and session)
    share_group: str | None = None
    # how long the broker keeps the session (and the messages not yet acknowledged) after
    # the connection is lost: a week, as a restart or an outage must not lose readings
    session_expiry: int = 7 * 24 * 3600
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0

    @property
    def subscription(self) -> str:
        """The topic filter subscribed to: ``topic``, or its shared form."""
        if self.share_group:
            return f"$share/{self.share_group}/{self.topic}"
        return self.topic


@dataclass(frozen=True, slots=True)
class MqttMessage:
    topic: str
    payload: bytes
    mid: int
    qos: int
    redelivered: bool  # the broker's DUP flag: it may have been handled before


Handler = Callable[[Sequence[MqttMessage]], Awaitable[None]]


class _Lost(Exception):
    """The connection closed (or could not be opened)."""


class _Session:
    """One connection: a paho client in manual-ack mode feeding an asyncio queue."""

    def __init__(self, settings: MqttSettings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings, self.loop = settings, loop
        self.queue: asyncio.Queue[MqttMessage | BaseException] = asyncio.Queue()
        self.connected: asyncio.Future[None] = loop.create_future()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                        protocol=paho.MQTTv5, manual_ack=True, reconnect_on_failure=False)
        if settings.username is not None:
            c.username_pw_set(settings.username, settings.password)
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.on_disconnect = self._on_disconnect
        self.client = c
        self.closed = threading.Event()  # set by paho once the connection is closed

    # paho callbacks run in paho's network thread
    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.loop.call_soon_threadsafe(self._fail_connect, _Lost(f"refused: {reason}"))
            return
        client.subscribe(self.settings.subscription, qos=1)

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        if any(r.is_failure for r in reasons):
            self.loop.call_soon_threadsafe(self._fail_connect, _Lost("subscription refused"))
        else:
            self.loop.call_soon_threadsafe(self._set_connected)

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        item = MqttMessage(msg.topic, bytes(msg.payload), msg.mid, msg.qos, bool(msg.dup))
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.closed.set()
        lost = _Lost(f"disconnected: {reason}")
        self.loop.call_soon_threadsafe(self._fail_connect, lost)
        self.loop.call_soon_threadsafe(self.queue.put_nowait, lost)

    def _set_connected(self) -> None:
        if not self.connected.done():
            self.connected.set_result(None)

    def _fail_connect(self, exc: BaseException) -> None:
        if not self.connected.done():
            self.connected.set_exception(exc)

    async def open(self, timeout: float) -> None:
        s = self.settings
        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = max(1, min(s.receive_maximum, 65535))
        props.SessionExpiryInterval = s.session_expiry
        try:
            await asyncio.to_thread(self.client.connect, s.host, s.port, s.keepalive,
                                    clean_start=False, properties=props)
        except OSError as exc:
            raise _Lost(f"cannot connect: {exc.__class__.__name__}") from None
        self.client.loop_start()
        await asyncio.wait_for(self.connected, timeout)

    def ack(self, messages: Sequence[MqttMessage]) -> None:
        # after a lost connection the broker redelivers these anyway; acking is pointless
        if not self.client.is_connected():
            return
        for m in messages:
            if m.qos > 0:
                self.client.ack(m.mid, m.qos)

    def close(self) -> None:
        if self.client.is_connected():
            with contextlib.suppress(Exception):
                self.client.disconnect()
            # Let the network thread write what is queued — the last PUBACKs, then the
            # DISCONNECT — before it is stopped: loop_stop() right away could end it first,
            # and the broker would send the batch just acknowledged once more. Milliseconds.
            self.closed.wait(_CLOSE_WAIT)
        self.client.loop_stop()


class MqttSubscriber:
    """Subscribe to ``settings.topic`` and hand messages to ``handler`` until stopped.

    ``await run(stop)`` returns when ``stop`` is set (or the task is cancelled), after the
    batch in hand is finished. ``ready`` is set each time the subscription is in place.
    """

    def __init__(self, settings: MqttSettings, handler: Handler) -> None:
        self.settings, self.handler = settings, handler
        self.ready = asyncio.Event()
        self.handled = 0  # messages acknowledged since start
        self.reconnects = 0

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        delay = self.settings.reconnect_min
        while not stop.is_set():
            session = _Session(self.settings, asyncio.get_running_loop())
            try:
                await session.open(timeout=max(5.0, self.settings.keepalive))
                self.ready.set()
                delay = self.settings.reconnect_min
                await self._consume(session, stop)
            except (_Lost, TimeoutError) as exc:
                log.warning("MQTT session for %s ended: %s", self.settings.client_id, exc)
            except _HandlerFailed as exc:
                log.warning("MQTT handler failed (%s); reconnecting for redelivery",
                            exc.__cause__.__class__.__name__)
            finally:
                self.ready.clear()
                session.close()
            if stop.is_set():
                return
            self.reconnects += 1
            pause = delay * (0.5 + random.random() / 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            delay = min(delay * 2, self.settings.reconnect_max)

    async def _consume(self, session: _Session, stop: asyncio.Event) -> None:
        """Take batches off the session's queue and run up to ``in_flight`` handlers at
        once, acknowledging each batch when it and every batch before it have finished."""
        limit = max(1, self.settings.in_flight)
        stopping = asyncio.ensure_future(stop.wait())
        # Batches in hand, oldest first, with their handler's task. PUBACKs must go out in
        # the order the PUBLISH packets came (MQTT 5 §4.6, [MQTT-4.6.0-2]), so a batch that
        # finished early waits for the ones before it.
        flight: collections.deque[tuple[list[MqttMessage], asyncio.Future[None]]] = (
            collections.deque())
        # One pending get, kept across rounds rather than made and cancelled each time:
        # while every place is taken it just waits, holding at most one message.
        getter: asyncio.Future[MqttMessage | BaseException] | None = None
        try:
            while True:
                while flight and flight[0][1].done():
                    self._finish(session, *flight.popleft())
                if getter is None:
                    getter = asyncio.ensure_future(session.queue.get())
                waits: set[asyncio.Future[Any]] = {stopping}
                if len(flight) < limit:
                    waits.add(getter)
                if flight:
                    waits.add(flight[0][1])
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if stopping.done():  # finish what is in hand, take nothing more
                    await self._drain(session, flight)
                    return
                if len(flight) >= limit or not getter.done():
                    continue
                item, getter = getter.result(), None
                batch: list[MqttMessage] = []
                while True:
                    if isinstance(item, BaseException):
                        if batch:
                            flight.append((batch, self._start(batch)))
                        await self._drain(session, flight)
                        raise item
                    batch.append(item)
                    if len(batch) >= self.settings.max_batch or session.queue.empty():
                        break
                    item = session.queue.get_nowait()
                flight.append((batch, self._start(batch)))
        finally:
            stopping.cancel()
            if getter is not None:
                getter.cancel()
            if flight:
                # A batch failed: the ones after it are not acknowledged, but a handler
                # already writing is let finish before the broker redelivers, so the
                # redelivery finds its commit (a duplicate) rather than racing it. When we
                # are cancelled (the process is going away) the handlers are cancelled too.
                current = asyncio.current_task()
                tasks = [t for _, t in flight]
                if current is not None and current.cancelling():
                    for t in tasks:
                        t.cancel()
                else:
                    await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, batch: list[MqttMessage]) -> asyncio.Future[None]:
        try:
            return asyncio.ensure_future(self.handler(batch))
        except Exception as exc:  # the handler failed before it could be awaited
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    async def _drain(self, session: _Session,
                     flight: collections.deque[tuple[list[MqttMessage], asyncio.Future[None]]]
                     ) -> None:
        """Wait for every batch in hand and acknowledge them in order."""
        while flight:
            await asyncio.wait({flight[0][1]})
            self._finish(session, *flight.popleft())

    def _finish(self, session: _Session, batch: list[MqttMessage],
                task: asyncio.Future[None]) -> None:
        """Acknowledge ``batch`` whose handler finished; raise if it failed."""
        exc = task.exception()
        if exc is not None:
            raise _HandlerFailed() from exc
        session.ack(batch)
        self.handled += len(batch)


class _HandlerFailed(Exception):
    """The handler raised: its batch stays unacknowledged."""
