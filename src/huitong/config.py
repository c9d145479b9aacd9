"""Settings, read from the environment (``HUITONG_*``) with documented defaults.

Every setting is listed in :data:`SETTINGS` with its description in English and Chinese; a
test checks that ``docs/configuration.md`` documents each one, so the docs cannot drift.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from platformdirs import user_data_dir

__all__ = ["SETTINGS", "Settings", "default_database_url"]


def default_database_url() -> str:
    """``sqlite:///<user data dir>/huitong/huitong.db``."""
    return f"sqlite:///{Path(user_data_dir('huitong')) / 'huitong.db'}"


@dataclass(frozen=True, slots=True)
class Setting:
    env: str
    default: str
    help_en: str
    help_zh: str


SETTINGS: dict[str, Setting] = {
    "database_url": Setting(
        "HUITONG_DATABASE_URL", "",
        "Database URL: sqlite:///path (default: a file in the user's data directory) "
        "or postgresql://user@host/db.",
        "数据库地址：sqlite:///路径（默认为用户数据目录下的文件）或 postgresql://用户@主机/库。"),
    "host": Setting(
        "HUITONG_HOST", "127.0.0.1",
        "Address the HTTP server binds. Loopback only until authentication lands.",
        "HTTP 服务监听地址。在身份认证上线前仅限本机回环地址。"),
    "port": Setting("HUITONG_PORT", "8080", "HTTP port.", "HTTP 端口。"),
    "workers": Setting(
        "HUITONG_WORKERS", "1",
        "Server processes; use one per CPU core for read-heavy loads.",
        "服务进程数；读多写少时可按 CPU 核数设置。"),
    "base_url": Setting(
        "HUITONG_BASE_URL", "",
        "Public FHIR base URL used in links and Location headers "
        "(default: derived from the request).",
        "链接与 Location 头中使用的对外 FHIR 基地址（默认：根据请求推断）。"),
    "max_body_bytes": Setting(
        "HUITONG_MAX_BODY_BYTES", str(64 * 1024 * 1024),
        "Largest request body accepted; larger bodies get 413.",
        "可接受的最大请求体字节数，超出返回 413。"),
    "default_page_size": Setting(
        "HUITONG_DEFAULT_PAGE_SIZE", "20", "Search page size when _count is absent.",
        "未指定 _count 时的检索分页大小。"),
    "max_page_size": Setting(
        "HUITONG_MAX_PAGE_SIZE", "1000", "Largest _count honoured.", "_count 的最大取值。"),
    "mllp_port": Setting(
        "HUITONG_MLLP_PORT", "0",
        "Port of the HL7 v2 MLLP listener (0: no listener). Binds the same address as HTTP.",
        "HL7 v2 MLLP 监听端口（0：不监听）。与 HTTP 使用相同的监听地址。"),
    "auth": Setting(
        "HUITONG_AUTH", "on",
        "'on': the FHIR and integration APIs require an OAuth 2 bearer token. 'off' is for "
        "local development only: nothing is checked, the server binds loopback only, and "
        "the web pages (which have no sign-in yet) are served only then.",
        "on：FHIR 与数据接入接口需要 OAuth 2 访问令牌。off 仅用于本机开发：不做任何校验，服务只"
        "监听本机回环地址，Web 页面（尚无登录）也只在此时提供。"),
    "mpi": Setting(
        "HUITONG_MPI", "on",
        "Master patient index in the write pipeline: 'on' matches every Patient write and "
        "keeps golden records; 'off' runs a plain FHIR repository.",
        "写入时的主索引匹配：on 对每次患者写入进行匹配并维护主索引记录；"
        "off 仅作为 FHIR 存储库运行。"),
    "quality": Setting(
        "HUITONG_QUALITY", "on",
        "Data-quality rules on every write: 'on' refuses what a reject rule fails and records "
        "warnings as findings; 'off' runs a plain FHIR repository.",
        "每次写入时执行数据质量规则：on 拒绝不通过拒收规则的数据并记录警告；"
        "off 仅作为 FHIR 存储库运行。"),
    "quality_config": Setting(
        "HUITONG_QUALITY_CONFIG", "",
        "Region data-quality configuration file (JSON or TOML); stored as the rule "
        "configuration in force at start-up when it differs (empty: the shipped rules).",
        "区域数据质量规则配置文件（JSON 或 TOML）；启动时若与当前配置不同则保存为生效配置"
        "（空：使用内置规则）。"),
    "ingest_retention_days": Setting(
        "HUITONG_INGEST_RETENTION_DAYS", "90",
        "Days the raw content of finished inbound messages is kept (channels may override).",
        "已处理入站消息原文的保留天数（各通道可单独设置）。"),
}


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    host: str
    port: int
    workers: int
    base_url: str
    max_body_bytes: int
    default_page_size: int
    max_page_size: int
    mllp_port: int
    auth: str
    mpi: str
    quality: str
    quality_config: str
    ingest_retention_days: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``env`` (default ``os.environ``), then explicit ``overrides``."""
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(SETTINGS[f.name].env, SETTINGS[f.name].default)
            values[f.name] = int(raw) if f.type in ("int", int) else raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        if not values["database_url"]:
            values["database_url"] = default_database_url()
        return cls(**values)  # type: ignore[arg-type]
