"""The two device payload converters: gateway JSON and PHD Bundles, each into one
:class:`~huitong.ingest.feeds.transaction.Conversion` (pure: payload in, Bundle and problems
out; the channel runtime stores the raw payload and writes the Bundle)."""

from __future__ import annotations

from typing import Any

import orjson

from huitong.ingest.devices.observations import DeviceContext, readings_to_bundle
from huitong.ingest.devices.phd import parse_phd_bundle
from huitong.ingest.devices.readings import parse_gateway_payload
from huitong.ingest.feeds.transaction import Conversion

__all__ = ["convert_device_payload", "convert_gateway_payload", "convert_phd_bundle"]


def convert_gateway_payload(payload: bytes | str | Any, ctx: DeviceContext | None = None,
                            *, validate: bool = True) -> Conversion:
    """A gateway JSON payload (see :mod:`huitong.ingest.devices.readings`) as a transaction.
    ``validate`` as for :func:`readings_to_bundle`."""
    ctx = ctx or DeviceContext()
    readings, problems = parse_gateway_payload(payload, ctx.timezone)
    return readings_to_bundle(readings, ctx, problems, validate=validate)


def convert_phd_bundle(bundle: bytes | str | dict[str, Any], ctx: DeviceContext | None = None,
                       *, validate: bool = True) -> Conversion:
    """A Personal Health Device Bundle (http://hl7.org/fhir/uv/phd/) as a transaction.
    ``validate`` as for :func:`readings_to_bundle`."""
    ctx = ctx or DeviceContext()
    readings, problems = parse_phd_bundle(bundle, ctx.timezone)
    return readings_to_bundle(readings, ctx, problems, validate=validate)


def convert_device_payload(payload: bytes | str | Any, ctx: DeviceContext | None = None,
                           *, validate: bool = True) -> Conversion:
    """Either format, told apart by content: a JSON object with ``"resourceType": "Bundle"``
    is a PHD Bundle, anything else a gateway payload (so one REST endpoint or MQTT topic can
    take both). ``validate`` as for :func:`readings_to_bundle`."""
    if isinstance(payload, bytes | str):
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError:  # reports the syntax error
            return convert_gateway_payload(payload, ctx, validate=validate)
    if isinstance(payload, dict) and payload.get("resourceType") == "Bundle":
        return convert_phd_bundle(payload, ctx, validate=validate)
    return convert_gateway_payload(payload, ctx, validate=validate)
