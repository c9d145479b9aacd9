"""Device channels over MQTT: one :class:`~huitong.ingest.devices.MqttSubscriber` per enabled
channel with ``transport = "mqtt"``, feeding the same intake as ``POST …/device``.

A channel's broker comes from its mapping table (defaults: the local Mosquitto)::

    [[channel]]
    id = "home-bp"
    organization = "Organization/community-c01"
    transport = "mqtt"
    format = "device"
    topic = "huitong/c01/readings/#"
    mapping = { host = "127.0.0.1", port = 1883, client_id = "huitong-home-bp" }
    # also: username, password (broker credentials), timezone = "+08:00",
    # in_flight = 2 (broker batches written at once; default HUITONG_MQTT_IN_FLIGHT)

A message is acknowledged (PUBACK, MQTT 5 §3.4) only after the intake returned: its
reading is written, or stored in the error queue when it can never be used. A transient
failure (database unavailable, channel stopped) raises in the handler, so the subscriber
drops the connection and the broker redelivers the unacknowledged messages; those already
handled come back as duplicates and are not written twice.

The set of subscriptions is read when the server starts (``start_mqtt_channels`` from the
app's lifespan); a channel added or re-configured later takes effect at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from huitong.fhir.errors import Category, FhirError
from huitong.ingest.channels import Channel
from huitong.ingest.devices import MqttMessage, MqttSettings, MqttSubscriber
from huitong.ingest.service import IngestService

__all__ = ["MqttChannelRun", "handle_mqtt_batch", "mqtt_settings", "start_mqtt_channels"]

log = logging.getLogger("huitong.ingest")


class _Retry(Exception):
    """A transient failure: leave the batch unacknowledged for redelivery."""


def mqtt_settings(channel: Channel, *, in_flight: int = 1,
                  worker: int | None = None) -> MqttSettings:
    """The subscription of ``channel``: its topic and the broker from its mapping table. The
    client id names the broker's persistent session, so it stays the same across restarts.
    ``in_flight`` (broker batches written at once, each in its own transaction) applies
    unless the mapping says ``in_flight``.

    ``worker``: this process's number among the workers of ``huitong serve --workers N``
    (stable across a worker's restarts). Each worker then has a client id of its own — two
    connections with one client id take the session from each other, again and again
    (MQTT 5 §3.1.4) — and they share one subscription (``$share/<client id>/<topic>``,
    §4.8.2), so the broker gives each reading to one of them. A restarted worker takes its
    own session back, with the readings it had not acknowledged."""
    m: dict[str, Any] = channel.mapping
    if not channel.topic:
        raise FhirError(Category.INVALID, f"channel {channel.id} has no topic / "
                                          f"通道 {channel.id} 未配置 topic")
    client_id = str(m.get("client_id") or f"huitong-{channel.id}")
    share_group = None
    if worker is not None:
        # a share name may not hold "/", "+" or "#" (§4.8.2)
        share_group = client_id.translate(str.maketrans("/+#", "___"))
        client_id = f"{client_id}-w{worker}"
    return MqttSettings(
        topic=channel.topic,
        client_id=client_id,
        share_group=share_group,
        host=str(m.get("host") or "127.0.0.1"),
        port=int(m.get("port") or 1883),
        username=str(m["username"]) if m.get("username") else None,
        password=str(m["password"]) if m.get("password") else None,
        in_flight=max(1, int(m.get("in_flight") or in_flight)),
    )


def handle_mqtt_batch(service: IngestService, channel_id: str,
                      messages: Sequence[MqttMessage], *, batched: bool = True) -> list[str]:
    """Take ``messages`` in, in order (blocking; run it in a worker thread). Returns each
    message's result (created, duplicate, error). Raises ``_Retry`` on a transient failure:
    nothing of the batch is acknowledged, and the redelivery finds what was stored.

    ``batched`` (the default): the whole batch is stored raw in one commit and its readings
    written in one transaction (``IngestService.receive_devices``, one payload at a time
    only when the group's write fails); else each message alone, two commits each."""
    if batched:
        try:
            outcomes = service.receive_devices(channel_id, [m.payload for m in messages])
        except FhirError as err:
            if err.category in (Category.UNAVAILABLE, Category.INTERNAL):
                raise _Retry(err.category.value) from None
            raise
        if any(o.result == "queued" for o in outcomes):
            raise _Retry("queued")
        return [o.result for o in outcomes]
    results = []
    for m in messages:
        try:
            outcome = service.receive_device(channel_id, m.payload)
        except FhirError as err:
            if err.category in (Category.UNAVAILABLE, Category.INTERNAL):
                raise _Retry(err.category.value) from None
            raise
        if outcome.result == "queued":
            raise _Retry("queued")
        results.append(outcome.result)
    return results


class MqttChannelRun:
    """The running subscriptions: ``subscribers`` by channel id and their ``tasks``."""

    def __init__(self) -> None:
        self.subscribers: dict[str, MqttSubscriber] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def wait(self) -> None:
        """Until every subscription ended (after the stop event was set)."""
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def start_mqtt_channels(service: IngestService, stop_event: asyncio.Event, *,
                        in_flight: int = 1, worker: int | None = None) -> MqttChannelRun:
    """Start a subscriber for each enabled MQTT device channel, in the running event loop.
    They run until ``stop_event`` is set; ``await run.wait()`` then lets them finish the
    batches in hand. ``in_flight``: broker batches each subscriber writes at once (the
    setting ``HUITONG_MQTT_IN_FLIGHT``; a channel's mapping may say otherwise). ``worker``:
    this process's number when several server workers share the subscriptions
    (:func:`mqtt_settings`)."""
    run = MqttChannelRun()
    for state in service.store.channels():
        channel = state.channel
        if not state.enabled or channel.transport != "mqtt" or channel.format != "device":
            continue
        try:
            settings = mqtt_settings(channel, in_flight=in_flight, worker=worker)
        except (FhirError, ValueError, TypeError):
            log.warning("MQTT channel %s is misconfigured; not subscribed", channel.id)
            continue

        def handler(batch: Sequence[MqttMessage], cid: str = channel.id) -> Any:
            return asyncio.to_thread(handle_mqtt_batch, service, cid, batch)

        subscriber = MqttSubscriber(settings, handler)
        run.subscribers[channel.id] = subscriber
        run.tasks.append(asyncio.ensure_future(subscriber.run(stop_event)))
        log.info("MQTT channel %s subscribed on %s:%s as %s", channel.id, settings.host,
                 settings.port, settings.client_id)
    return run
