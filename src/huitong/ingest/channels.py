"""Channels: one source at one institution — its transport, format, mapping and the
Organization it speaks for.

A channel is configured in a TOML file (``huitong channel load FILE``) or through the API
(``PUT /api/ingest/channels/{id}``); both go through :func:`channel_from_config`, which
returns a :class:`Channel` or raises :class:`ChannelConfigError` naming the field, in English
and Chinese. Pure: nothing here touches the database (the message store keeps the rows).

A TOML file holds one or more ``[[channel]]`` tables::

    [[channel]]
    id = "county-hospital-his"
    name = "County Hospital HIS / 县医院 HIS"
    organization = "Organization/county-hospital"
    transport = "mllp"              # mllp | http | mqtt | file
    format = "hl7v2"                # hl7v2 | csv | json | device | dicom
    sending_facility = "COUNTY_HOSP"  # MLLP routing: MSH-4 (and optionally MSH-3)
    ack_host = "10.1.2.3"           # enhanced mode: the sender's return address for
    ack_port = 6661                 # application ACKs (both or neither)

Without ``ack_host``/``ack_port`` an enhanced-mode message (MSH-15/16) is answered as before:
accept and application ACK together on the connection it came in on, after processing.
With them, the accept ACK goes back as soon as the raw message is stored and the
application ACK later, over a new MLLP connection (:mod:`huitong.ingest.app_acks`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FORMATS",
    "TRANSPORTS",
    "Channel",
    "ChannelConfigError",
    "channel_from_config",
    "channels_from_toml",
]

TRANSPORTS = ("mllp", "http", "mqtt", "file")
FORMATS = ("hl7v2", "csv", "json", "device", "dicom")
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_ORG = re.compile(r"Organization/[A-Za-z0-9\-.]{1,64}")
_KNOWN = {
    "id", "name", "organization", "transport", "format", "sending_application",
    "sending_facility", "identifier_namespace", "mapping", "topic", "retention_days",
    "enabled", "max_attempts", "ack_host", "ack_port",
}


class ChannelConfigError(ValueError):
    """A channel configuration that cannot be used; ``field`` names the offending key."""

    def __init__(self, field_name: str, en: str, zh: str) -> None:
        super().__init__(f"{field_name}: {en} / {zh}")
        self.field = field_name
        self.en = en
        self.zh = zh


@dataclass(frozen=True, slots=True)
class Channel:
    """A validated channel. ``identifier_namespace`` roots the identifier systems of the
    institution's local ids (MRN, visit and order numbers) when a message names no assigning
    authority; by default it is derived from the organization id."""

    id: str
    name: str
    organization: str
    transport: str
    format: str
    sending_application: str | None = None
    sending_facility: str | None = None
    identifier_namespace: str = ""
    mapping: dict[str, Any] = field(default_factory=dict)
    topic: str | None = None
    retention_days: int | None = None
    enabled: bool = True
    max_attempts: int = 8
    # The sender's return address for enhanced-mode application ACKs (None: answer on the
    # inbound connection).
    ack_host: str | None = None
    ack_port: int | None = None

    @property
    def return_address(self) -> tuple[str, int] | None:
        """Where application ACKs go over a new connection, if configured."""
        if self.ack_host and self.ack_port:
            return self.ack_host, self.ack_port
        return None

    def to_config(self) -> dict[str, Any]:
        """The configuration this channel was built from (JSON-ready, defaults included)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def accepts_sender(self, application: str, facility: str) -> bool:
        """Whether an HL7 v2 message from MSH-3 ``application`` / MSH-4 ``facility`` is this
        channel's. A channel without sender criteria takes nothing by routing."""
        if self.sending_facility is None and self.sending_application is None:
            return False
        if self.sending_facility is not None and self.sending_facility != facility:
            return False
        return self.sending_application is None or self.sending_application == application


def _need_str(config: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = config.get(key)
    if value is None:
        if required:
            raise ChannelConfigError(key, "is required", "为必填项")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ChannelConfigError(key, "must be a non-empty string", "必须是非空字符串")
    return value.strip()


def _choice(config: dict[str, Any], key: str, options: tuple[str, ...]) -> str:
    value = _need_str(config, key)
    if value not in options:
        listed = ", ".join(options)
        raise ChannelConfigError(key, f"must be one of {listed}", f"必须是以下之一：{listed}")
    return value


def _positive_int(config: dict[str, Any], key: str) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ChannelConfigError(key, "must be a positive whole number", "必须是正整数")
    return value


def channel_from_config(config: Any) -> Channel:
    """Validate one channel's configuration (a TOML table or JSON object)."""
    if not isinstance(config, dict):
        raise ChannelConfigError("channel", "must be a table/object", "必须是表/对象")
    unknown = sorted(set(config) - _KNOWN)
    if unknown:
        raise ChannelConfigError(
            unknown[0], f"unknown setting (known: {', '.join(sorted(_KNOWN))})", "未知的设置项"
        )
    cid = _need_str(config, "id")
    assert cid is not None
    if not _ID.fullmatch(cid):
        raise ChannelConfigError(
            "id", "use lower-case letters, digits and '-' (at most 63)",
            "只能使用小写字母、数字和“-”（最多 63 个字符）",
        )
    org = _need_str(config, "organization")
    assert org is not None
    if not _ORG.fullmatch(org):
        raise ChannelConfigError(
            "organization", "must be a reference like Organization/<id>",
            "必须是 Organization/<id> 形式的引用",
        )
    transport = _choice(config, "transport", TRANSPORTS)
    fmt = _choice(config, "format", FORMATS)
    application = _need_str(config, "sending_application", required=False)
    facility = _need_str(config, "sending_facility", required=False)
    if transport == "mllp" and application is None and facility is None:
        raise ChannelConfigError(
            "sending_facility", "an MLLP channel needs sending_facility (MSH-4) to route by",
            "MLLP 通道需要 sending_facility（MSH-4）用于路由",
        )
    if transport == "mllp" and fmt != "hl7v2":
        raise ChannelConfigError("format", "MLLP carries hl7v2 only", "MLLP 只能传输 hl7v2")
    topic = _need_str(config, "topic", required=transport == "mqtt")
    mapping = config.get("mapping", {})
    if not isinstance(mapping, dict):
        raise ChannelConfigError("mapping", "must be a table/object", "必须是表/对象")
    if fmt in ("csv", "json") and not mapping:
        raise ChannelConfigError(
            "mapping", "a CSV/JSON channel needs its mapping", "CSV/JSON 通道需要映射配置"
        )
    enabled = config.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ChannelConfigError("enabled", "must be true or false", "必须是 true 或 false")
    namespace = _need_str(config, "identifier_namespace", required=False)
    ack_host = _need_str(config, "ack_host", required=False)
    ack_port = _positive_int(config, "ack_port")
    if ack_port is not None and ack_port > 65535:
        raise ChannelConfigError("ack_port", "must be a TCP port (1-65535)",
                                 "必须是 TCP 端口号（1-65535）")
    if (ack_host is None) != (ack_port is None):
        raise ChannelConfigError(
            "ack_host" if ack_host is None else "ack_port",
            "ack_host and ack_port go together", "ack_host 与 ack_port 必须同时配置",
        )
    if ack_host is not None and fmt != "hl7v2":
        raise ChannelConfigError("ack_host", "application ACKs are for hl7v2 channels only",
                                 "应用确认仅适用于 hl7v2 通道")
    return Channel(
        id=cid,
        name=_need_str(config, "name", required=False) or cid,
        organization=org,
        transport=transport,
        format=fmt,
        sending_application=application,
        sending_facility=facility,
        identifier_namespace=namespace or f"urn:huitong:org:{org.split('/', 1)[1]}",
        mapping=mapping,
        topic=topic,
        retention_days=_positive_int(config, "retention_days"),
        enabled=enabled,
        max_attempts=_positive_int(config, "max_attempts") or 8,
        ack_host=ack_host,
        ack_port=ack_port,
    )


def channels_from_toml(path: Path) -> list[Channel]:
    """Every ``[[channel]]`` in a TOML file, validated; ids must be unique in the file."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ChannelConfigError(
            str(path), f"cannot read the file: {exc}", f"无法读取文件：{exc}"
        ) from exc
    tables = document.get("channel")
    if not isinstance(tables, list) or not tables:
        raise ChannelConfigError("channel", "no [[channel]] tables found", "未找到 [[channel]] 表")
    channels: list[Channel] = []
    for i, table in enumerate(tables):
        try:
            channels.append(channel_from_config(table))
        except ChannelConfigError as exc:
            raise ChannelConfigError(f"channel[{i}].{exc.field}", exc.en, exc.zh) from None
    ids = [c.id for c in channels]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ChannelConfigError("id", f"duplicate channel id {duplicates[0]}", "通道 id 重复")
    return channels
