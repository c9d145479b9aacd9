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
        "Address the HTTP server binds (0.0.0.0 for every interface). Any address with "
        "authentication on; with HUITONG_AUTH=off only loopback is allowed.",
        "HTTP 服务监听地址（0.0.0.0 表示所有网卡）。启用身份认证时可为任意地址；"
        "HUITONG_AUTH=off 时仅允许本机回环地址。"),
    "port": Setting("HUITONG_PORT", "8080", "HTTP port.", "HTTP 端口。"),
    "workers": Setting(
        "HUITONG_WORKERS", "1",
        "Server processes; use one per CPU core for read-heavy loads. On Linux each has its "
        "own listening socket on the port (SO_REUSEPORT: the kernel spreads connections "
        "evenly), is forked from a supervisor that loaded the code once (shared memory), and "
        "is restarted if it dies.",
        "服务进程数；读多写少时可按 CPU 核数设置。在 Linux 上每个进程在同一端口上有自己的监听"
        "套接字（SO_REUSEPORT，由内核均匀分配连接），由只加载一次代码的主控进程派生（共享内存），"
        "异常退出后自动重启。"),
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
        "'on': the FHIR and integration APIs require an OAuth 2 bearer token, and the web "
        "pages (/app) a sign-in (password, TOTP for staff) and show each person what their "
        "role and the patient's consent allow. 'off' is for local development only: nothing "
        "is checked, the server binds loopback only, and the pages are an open demo.",
        "on：FHIR 与数据接入接口需要 OAuth 2 访问令牌，网页（/app）需要登录（密码，工作人员另需"
        "动态口令），且每人只能看到其角色和患者同意所允许的内容。off 仅用于本机开发：不做任何校验，"
        "服务只监听本机回环地址，网页为开放演示。"),
    "consent_default": Setting(
        "HUITONG_CONSENT_DEFAULT", "opt-in",
        "The region's consent default when a patient has no applicable consent: 'opt-in' "
        "shares nothing beyond the patient's own care relationships; 'opt-out' shares "
        "non-sensitive data with every clinician unless the patient objects. Sensitive "
        "categories always need an explicit grant.",
        "患者没有适用的同意书时本区域的默认规则：opt-in（选择加入）除本人就诊关系外不共享；"
        "opt-out（选择退出）除患者反对外向所有临床医生共享非敏感数据。敏感类别始终需要明确授权。"),
    "break_glass_hours": Setting(
        "HUITONG_BREAK_GLASS_HOURS", "4",
        "How long an emergency (break-glass) access lasts, in hours.",
        "紧急访问（破窗）的持续时间（小时）。"),
    "share_code_key": Setting(
        "HUITONG_SHARE_CODE_KEY_FILE", "",
        "File holding the secret key (at least 32 bytes) under which share codes are stored "
        "(HMAC-SHA-256), so a stolen table cannot be searched for codes. Empty: a key is "
        "generated on first start and kept in the database.",
        "保存共享码密钥（至少 32 字节）的文件；共享码以该密钥的 HMAC-SHA-256 存储，"
        "被窃取的数据表无法据此穷举共享码。为空：首次启动时自动生成并保存在数据库中。"),
    "rate_limit": Setting(
        "HUITONG_RATE_LIMIT", "100",
        "Requests per minute for each client (token client_id, else remote address) on the "
        "patient-data interfaces (/fhir and the consent APIs), as N, N/second, N/minute or "
        "N/hour; 0 turns it off. Enforced with authentication on; beyond it: 429 with "
        "Retry-After.",
        "每个客户端（令牌的 client_id，否则为来源地址）访问患者数据接口（/fhir 与同意接口）"
        "的速率上限，格式为 N、N/second、N/minute 或 N/hour（默认每分钟）；0 表示关闭。"
        "启用身份认证时生效；超出返回 429 并带 Retry-After。"),
    "redis_url": Setting(
        "HUITONG_REDIS_URL", "",
        "Redis URL (redis://host:6379/0) where the rate-limit buckets are shared by every "
        "worker; empty: each worker keeps its own.",
        "Redis 地址（redis://主机:6379/0），所有工作进程在此共享速率限制计数；"
        "空：每个进程各自计数。"),
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
    "translate": Setting(
        "HUITONG_TRANSLATE", "on",
        "Terminology on every write: 'on' adds the standard coding beside each local one a "
        "ConceptMap maps (the institution's, then region-wide ones), normalises measured "
        "quantities to the preferred UCUM unit (the original kept) and queues local codes "
        "without a mapping; 'off' stores codes and units as sent.",
        "每次写入时进行术语转换：on 按概念映射（本机构的与全区域的）在本地编码旁添加标准编码，"
        "将计量值换算为首选 UCUM 单位（保留原值），并将无映射的本地编码列入待映射队列；"
        "off 按原样保存编码与单位。"),
    "audit": Setting(
        "HUITONG_AUDIT", "on",
        "Audit log: 'on' records every FHIR interaction, sign-in and token in a Merkle-tree "
        "log (writes in the same transaction as the action) with signed checkpoints; 'off' "
        "records nothing (tests of other parts only).",
        "审计日志：on 将每次 FHIR 交互、登录与令牌签发记入 Merkle 树日志（写操作与其审计记录在同一"
        "事务中提交），并定期签发检查点；off 不记录（仅供其他部分的测试使用）。"),
    "audit_signing_key": Setting(
        "HUITONG_AUDIT_SIGNING_KEY", "",
        "PEM (PKCS#8) Ed25519 private key file that signs audit checkpoints; publish its "
        "public key. Empty: a key is generated and kept in the database (development).",
        "签署审计检查点的 Ed25519 私钥文件（PEM，PKCS#8）；请公布其公钥。为空：自动生成并保存在"
        "数据库中（仅供开发）。"),
    "audit_checkpoint_seconds": Setting(
        "HUITONG_AUDIT_CHECKPOINT_SECONDS", "300",
        "How often the server signs a new audit checkpoint (when the log grew).",
        "服务器签发新审计检查点的间隔秒数（仅当日志有新增时）。"),
    "ingest_retention_days": Setting(
        "HUITONG_INGEST_RETENTION_DAYS", "90",
        "Days the raw content of finished inbound messages is kept (channels may override).",
        "已处理入站消息原文的保留天数（各通道可单独设置）。"),
    "mllp_batch": Setting(
        "HUITONG_MLLP_BATCH", "32",
        "Most HL7 v2 messages (from all MLLP connections) stored and written together in "
        "one group of two commits; a lone message waits at most 2 ms for company. 1: each "
        "message on its own.",
        "MLLP 各连接同时到达的 HL7 v2 消息合并处理的最大条数（整组两次提交）；单条消息最多"
        "等待 2 毫秒。1：逐条处理。"),
    "mqtt_in_flight": Setting(
        "HUITONG_MQTT_IN_FLIGHT", "2",
        "Broker batches of an MQTT device channel written at once, each in its own "
        "transaction (while one waits on the database the next is converted); they are "
        "still acknowledged in arrival order. 1: one batch at a time. A channel's mapping "
        "may set in_flight.",
        "MQTT 设备通道同时写入的消息批数（每批一个事务；一批等待数据库时下一批已在转换），"
        "确认（PUBACK）仍按到达顺序发送。1：逐批处理。通道映射可用 in_flight 单独设置。"),
    "worker_index": Setting(
        "HUITONG_WORKER_INDEX", "",
        "Set by huitong serve --workers N in each worker process (0 … N-1, kept when a worker "
        "is restarted); leave it unset. MQTT device channels then subscribe with a client id "
        "per worker and share each subscription ($share), so every reading goes to one "
        "worker. Empty: a single process.",
        "由 huitong serve --workers N 为每个工作进程设置（0 … N-1，进程重启后不变），请勿手动"
        "设置。此时 MQTT 设备通道每个工作进程使用各自的客户端 ID 并共享订阅（$share），每条"
        "读数只交给一个工作进程。为空：单进程。"),
    "import_dir": Setting(
        "HUITONG_IMPORT_DIR", "",
        "Directory whose NDJSON files POST /fhir/$import may read (empty: $import is off).",
        "POST /fhir/$import 可读取的 NDJSON 文件所在目录（空：不提供 $import）。"),
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
    consent_default: str
    break_glass_hours: int
    share_code_key: str
    rate_limit: str
    redis_url: str
    mpi: str
    quality: str
    quality_config: str
    translate: str
    audit: str
    audit_signing_key: str
    audit_checkpoint_seconds: int
    ingest_retention_days: int
    mllp_batch: int
    mqtt_in_flight: int
    worker_index: str
    import_dir: str

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
