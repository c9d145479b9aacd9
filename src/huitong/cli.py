"""The ``huitong`` command.

Every message a person reads is given in English and Simplified Chinese.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from huitong import __version__
from huitong.config import Settings
from huitong.runtime import tune_collector

__all__ = ["main"]

NO_AUTH_BANNER = (
    "WARNING: authentication is OFF (HUITONG_AUTH=off, local development): anyone who can reach "
    "this port reads and writes everything. The server only listens on loopback.\n"
    "警告：身份认证已关闭（HUITONG_AUTH=off，仅供本机开发）：能访问此端口的任何人都可读写全部数据。"
    "服务仅监听本机回环地址。"
)
AUTH_BANNER = (
    "Authentication is on: the FHIR and integration APIs need an OAuth 2 bearer token "
    "(huitong user / huitong client), and role, scope and consent rules are enforced inside "
    "the queries; clients are rate-limited (HUITONG_RATE_LIMIT). The server may listen on any "
    "address (--host 0.0.0.0); put TLS in front of it.\n"
    "已启用身份认证：FHIR 与数据接入接口需要 OAuth 2 访问令牌（huitong user / huitong client），"
    "角色、授权范围与知情同意规则在查询内执行；客户端请求受速率限制（HUITONG_RATE_LIMIT）。"
    "服务可监听任意地址（--host 0.0.0.0），请在其前端配置 TLS。"
)


def _err(en: str, zh: str) -> None:
    click.secho(f"{en}\n{zh}", fg="red", err=True)


def _settings(db: str | None, **overrides: Any) -> Settings:
    return Settings.from_env(database_url=db, **overrides)


def _open(url: str, *, upgrade: bool = True, local_base: str | None = None) -> Any:
    from huitong.fhir.errors import FhirError
    from huitong.store import open_repository

    try:
        return open_repository(url, upgrade=upgrade, local_base=local_base)
    except FhirError as exc:
        _err(f"Cannot open the database: {exc.message}", f"无法打开数据库：{exc.message}")
        sys.exit(1)


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def app_from_env() -> Any:
    """The ASGI app for one worker process, configured from the environment (uvicorn's
    factory when ``--workers`` > 1: each process opens its own connections)."""
    from huitong.server.app import create_app

    settings = Settings.from_env()
    return create_app(
        _open(settings.database_url, upgrade=False, local_base=settings.base_url), settings
    )


def _serve(settings: Settings, repo: Any) -> None:
    import os

    import uvicorn

    from huitong.server.app import create_app
    from huitong.supervisor import exec_supervisor, port_in_use, reuse_port_balancing

    if settings.auth == "off" and not _is_loopback(settings.host):
        # With nothing checked, anyone who reaches the port reads everything.
        _err(
            f"REFUSING to bind {settings.host}: authentication is OFF (HUITONG_AUTH=off is for "
            "local development only), so Huitong listens on loopback only (127.0.0.1). Turn "
            "authentication on (HUITONG_AUTH=on) to serve other addresses.",
            f"拒绝监听 {settings.host}：身份认证已关闭（HUITONG_AUTH=off 仅供本机开发），汇通只监听"
            "本机回环地址（127.0.0.1）。如需对外提供服务，请启用身份认证（HUITONG_AUTH=on）。",
        )
        sys.exit(2)
    url = f"http://{settings.host}:{settings.port}/fhir"
    click.secho(NO_AUTH_BANNER if settings.auth == "off" else AUTH_BANNER, fg="yellow")
    click.echo(f"Huitong {__version__} FHIR R4 server: {url}\n汇通 FHIR R4 服务地址：{url}")
    pages = f"http://{settings.host}:{settings.port}/app"
    click.echo(f"Web pages: {pages}\n网页入口：{pages}")
    if settings.auth != "off":
        click.echo("Sign in to the pages with an account from `huitong user add`.\n"
                   "请使用 `huitong user add` 创建的账户登录网页。")
    if settings.mllp_port:
        where = f"{settings.host}:{settings.mllp_port}"
        click.echo(f"HL7 v2 MLLP listener: {where}\nHL7 v2 MLLP 监听地址：{where}")
    if settings.workers > 1:
        repo.close()
        os.environ["HUITONG_DATABASE_URL"] = settings.database_url
        os.environ["HUITONG_AUTH"] = settings.auth
        # Each worker opens the MLLP port too (SO_REUSEPORT): the kernel spreads connections.
        os.environ["HUITONG_MLLP_PORT"] = str(settings.mllp_port)
        if reuse_port_balancing():
            # Each worker its own listening socket: connections spread evenly
            # (supervisor.py).
            if port_in_use(settings.host, settings.port):
                _err(
                    f"Port {settings.port} on {settings.host} is already in use.",
                    f"{settings.host} 上的端口 {settings.port} 已被占用。",
                )
                sys.exit(2)
            exec_supervisor(settings.host, settings.port, settings.workers)
        uvicorn.run(
            "huitong.cli:app_from_env", factory=True, workers=settings.workers,
            host=settings.host, port=settings.port, log_level="warning", access_log=False,
        )
        return
    app = create_app(repo, settings)
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level="warning", access_log=False
    )


@click.group()
@click.version_option(__version__, prog_name="huitong")
def main() -> None:
    """Huitong (汇通) regional health information exchange / 区域健康信息互通平台."""
    # Loads (import, ingest) and the server allocate heavily: collect less often
    # (huitong/runtime.py). The server also freezes its start-up heap once it is built.
    tune_collector(freeze=False)


@main.command()
@click.option("--db", help="Database URL / 数据库地址 (HUITONG_DATABASE_URL).")
@click.option("--host", help="Bind address / 监听地址 (loopback only with HUITONG_AUTH=off).")
@click.option("--port", type=int, help="HTTP port / 端口.")
@click.option("--workers", type=int, help="Server processes / 服务进程数.")
@click.option("--mllp-port", type=int, help="HL7 v2 MLLP listener port / MLLP 监听端口.")
def serve(
    db: str | None, host: str | None, port: int | None, workers: int | None,
    mllp_port: int | None,
) -> None:
    """Run the FHIR server / 启动 FHIR 服务."""
    settings = _settings(db, host=host, port=port, workers=workers, mllp_port=mllp_port)
    is_sqlite = settings.database_url.startswith("sqlite:")
    _serve(
        settings,
        _open(settings.database_url, upgrade=is_sqlite, local_base=settings.base_url),
    )


@main.group()
def db() -> None:
    """Database schema / 数据库结构."""


@db.command("upgrade")
@click.option("--db", "db_url", help="Database URL / 数据库地址.")
def db_upgrade(db_url: str | None) -> None:
    """Apply pending schema migrations / 执行数据库结构迁移."""
    settings = _settings(db_url)
    repo = _open(settings.database_url, upgrade=True)
    done = repo.applied_migrations
    repo.close()
    if done:
        click.echo(f"Applied migrations {done}. / 已执行迁移 {done}。")
    else:
        click.echo("Schema is up to date. / 数据库结构已是最新。")


@main.command()
@click.option("--db", help="Database URL / 数据库地址 (default: a demo SQLite file).")
@click.option("--residents", default=300, show_default=True, help="Residents / 居民人数.")
@click.option("--seed", default=20261122, show_default=True, help="Random seed / 随机种子.")
@click.option("--port", type=int, help="HTTP port / 端口.")
@click.option("--no-serve", is_flag=True, help="Load only, do not serve / 只加载不启动服务.")
def demo(db: str | None, residents: int, seed: int, port: int | None, no_serve: bool) -> None:
    """Create a synthetic region and serve it / 生成演示区域数据并启动服务."""
    from platformdirs import user_data_dir

    from huitong.demo import generate_region
    from huitong.demo.feed import clock_moment, live_feed
    from huitong.importer import InProcessTarget, load_bundles

    url = db or f"sqlite:///{Path(user_data_dir('huitong')) / 'demo.db'}"
    # The demo is a local, synthetic region: no sign-in, loopback only (see the banner).
    settings = _settings(url, port=port, auth="off")
    repo = _open(settings.database_url, local_base=settings.base_url)
    # Read once, from the clock that stamps receipts: the feed's events count back from it.
    started_us: int = repo.clock()
    click.echo(
        f"Generating a synthetic region with {residents} residents…\n"
        f"正在生成含 {residents} 名居民的模拟区域数据……"
    )
    bundles = generate_region(seed=seed, residents=residents)
    history = InProcessTarget(repo, settings)
    counts = load_bundles(history, bundles, label="demo / 演示数据")
    history.close()
    settings = _demo_go_live(repo, settings, started_us, seed)
    click.echo(
        "Loading a recent feed: the last days' visits and home readings, a few of them late or "
        "implausible, for the quality dashboard…\n"
        "正在导入近期数据：最近几天的就诊与家庭自测记录，其中少数迟报或数值不合理，供数据质量看板展示……"
    )
    # A new target: its app reads the quality document just stored (the history's app would
    # only notice it after its reload interval).
    feed = InProcessTarget(repo, settings)
    recent_bundles = live_feed(now=clock_moment(started_us), seed=seed, residents=residents)
    recent = load_bundles(feed, recent_bundles, label="feed / 近期数据")
    feed.close()
    counts.update(recent)
    _print_summary(counts)
    if not no_serve:
        _serve(settings, repo)
    repo.close()


def _demo_go_live(repo: Any, settings: Settings, started_us: int, seed: int) -> Settings:
    """Date the demo institutions' go-live before the feed (huitong.demo.feed): store the
    region quality document in force with their ``live_since`` added. Returns the settings
    the feed and the server run with."""
    import dataclasses

    from huitong.demo.feed import LIVE_DAYS, clock_moment, go_live_document, live_since
    from huitong.quality.service import QualityService

    if settings.quality == "off":
        return settings
    started = clock_moment(started_us)
    service = QualityService(repo, clock=repo.clock)
    current = service.config()
    document = go_live_document(started, seed=seed, current=current.document if current else None)
    if current is None or current.document != document:
        service.set_config(document, by="huitong demo",
                           note="demo institutions' live feeds / 演示机构实时接入日期")  # fmt: skip
    since = live_since(started).isoformat()
    click.echo(
        f"Data quality: the demo institutions went live on {since} ({LIVE_DAYS} days ago); "
        "what happened before is history (a backfill), which the timeliness rules do not "
        f"judge.\n数据质量：演示机构于 {since}（{LIVE_DAYS} 天前）开始实时接入；"
        "此前发生的事件属于历史补录，不参与及时性评判。"
    )
    # The document in force already holds HUITONG_QUALITY_CONFIG's (the history's app stored
    # it); applying the file again at the next start would drop the go-live dates.
    return dataclasses.replace(settings, quality_config="")


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--db", help="Database URL / 数据库地址.")
@click.option(
    "--server", help="Post to a running server instead / 改为提交到运行中的服务 (…/fhir)."
)
def import_(paths: tuple[Path, ...], db: str | None, server: str | None) -> None:
    """Load Bundles, NDJSON, folders or .tar.gz archives / 导入 Bundle、NDJSON、目录或 .tar.gz."""
    from huitong.importer import HttpTarget, InProcessTarget, iter_bundles, load_bundles

    settings = _settings(db)
    if server:
        target: Any = HttpTarget(server)
    else:
        repo = _open(settings.database_url, local_base=settings.base_url)
        target = InProcessTarget(repo, settings)
    counts = load_bundles(target, iter_bundles(paths), label="import / 导入")
    _print_summary(counts)
    if counts.get("__errors__"):
        sys.exit(1)


def _print_summary(counts: Counter[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    errors = counts.pop("__errors__", 0)
    table = Table(title="Loaded resources / 已导入资源")
    table.add_column("Type / 类型")
    table.add_column("Count / 数量", justify="right")
    for name, n in sorted(counts.items()):
        table.add_row(name, str(n))
    table.add_row("[b]Total / 合计[/b]", f"[b]{sum(counts.values())}[/b]")
    Console().print(table)
    if errors:
        _err(
            f"{errors} bundle(s) failed; see messages above.",
            f"{errors} 个 Bundle 导入失败，见上文。",
        )
    counts["__errors__"] = errors


# -- integration engine -------------------------------------------------------------------
def _ingest_service(settings: Settings) -> Any:
    """The integration engine over the configured database, writing through the same
    transaction executor the FHIR server uses."""
    from huitong.ingest.service import IngestService, IngestSettings
    from huitong.server.bundle import run_transaction
    from huitong.server.request import ServerContext

    repo = _open(settings.database_url, local_base=settings.base_url)
    ctx = ServerContext(repo, settings, repo.clock, repo.new_id)
    return IngestService(
        repo,
        lambda bundle, before_commit: run_transaction(
            ctx, bundle, before_commit, base_url=settings.base_url or ""
        ),
        repo.clock, repo.new_id, IngestSettings(retention_days=settings.ingest_retention_days),
    )


@main.group()
def channel() -> None:
    """Integration channels / 数据接入通道."""


@channel.command("list")
@click.option("--db", help="Database URL / 数据库地址.")
def channel_list(db: str | None) -> None:
    """List channels and their message counts / 列出通道及消息数量."""
    service = _ingest_service(_settings(db))
    totals: dict[str, dict[str, int]] = {}
    for cid, status, n in service.store.totals():
        totals.setdefault(cid, {})[status] = n
    states = service.store.channels()
    if not states:
        click.echo("No channels yet: `huitong channel load FILE`.\n尚无通道：请运行 "
                   "`huitong channel load 文件`。")
    for state in states:
        c = state.channel
        flag = "on  / 运行" if state.enabled else "off / 停止"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(totals.get(c.id, {}).items())) or "-"
        click.echo(f"{c.id:<24} {flag}  {c.transport}/{c.format:<7} {c.organization:<32} "
                   f"{counts}")
    service.repo.close()


@channel.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--db", help="Database URL / 数据库地址.")
def channel_load(path: Path, db: str | None) -> None:
    """Create or replace channels from a TOML file / 从 TOML 文件创建或更新通道."""
    from huitong.ingest.channels import ChannelConfigError, channels_from_toml

    try:
        channels = channels_from_toml(path)
    except ChannelConfigError as exc:
        _err(f"Invalid channel file: {exc.field}: {exc.en}", f"通道文件无效：{exc.field}：{exc.zh}")
        sys.exit(2)
    service = _ingest_service(_settings(db))
    for c in channels:
        service.put_channel(c)
        click.echo(f"channel {c.id} saved / 通道 {c.id} 已保存")
    service.repo.close()


def _toggle(channel_id: str, db: str | None, enabled: bool) -> None:
    from huitong.fhir.errors import FhirError

    service = _ingest_service(_settings(db))
    try:
        service.set_enabled(channel_id, enabled)
    except FhirError:
        _err(f"No channel '{channel_id}'.", f"没有名为“{channel_id}”的通道。")
        sys.exit(1)
    finally:
        service.repo.close()
    if enabled:
        click.echo(f"channel {channel_id} started / 通道 {channel_id} 已启动")
    else:
        click.echo(f"channel {channel_id} stopped / 通道 {channel_id} 已停止")


@channel.command("start")
@click.argument("channel_id")
@click.option("--db", help="Database URL / 数据库地址.")
def channel_start(channel_id: str, db: str | None) -> None:
    """Start (enable) a channel / 启动通道."""
    _toggle(channel_id, db, True)


@channel.command("stop")
@click.argument("channel_id")
@click.option("--db", help="Database URL / 数据库地址.")
def channel_stop(channel_id: str, db: str | None) -> None:
    """Stop (disable) a channel: its senders get AE and resend later / 停止通道."""
    _toggle(channel_id, db, False)


@main.group()
def ingest() -> None:
    """Feed files into the integration engine / 将文件送入数据接入引擎."""


@ingest.command("hl7v2")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--channel", "channel_id", help="Channel id (default: route by MSH-4) / 通道.")
@click.option("--db", help="Database URL / 数据库地址.")
def ingest_hl7v2(paths: tuple[Path, ...], channel_id: str | None, db: str | None) -> None:
    """Process HL7 v2 message files (one message per file) / 处理 HL7 v2 消息文件."""
    service = _ingest_service(_settings(db))
    files = sorted(p for path in paths for p in ([path] if path.is_file() else path.rglob("*"))
                   if p.is_file())
    codes: dict[str, int] = {}
    for f in files:
        result = service.receive_hl7v2(f.read_bytes(), channel_id=channel_id)
        codes[result.ack_code] = codes.get(result.ack_code, 0) + 1
        if result.ack_code != "AA":
            click.echo(f"{f.name}: {result.ack_code}", err=True)
    service.repo.close()
    summary = ", ".join(f"{k} {v}" for k, v in sorted(codes.items()))
    click.echo(f"{len(files)} messages: {summary}\n共 {len(files)} 条消息：{summary}")
    if codes.get("AE") or codes.get("AR"):
        sys.exit(1)


@main.group()
def mpi() -> None:
    """Master patient index / 患者主索引."""


@mpi.command("train")
@click.option("--db", help="Database URL / 数据库地址.")
def mpi_train(db: str | None) -> None:
    """Re-estimate the matching model from this region's records / 用本区域数据重新训练匹配模型."""
    from huitong.fhir.errors import FhirError
    from huitong.mpi.service import IdentityService

    settings = _settings(db)
    repo = _open(settings.database_url, local_base=settings.base_url)
    try:
        service = IdentityService(repo, clock=repo.clock, new_id=repo.new_id)
        _model, records, pairs = service.train()
    except FhirError as exc:
        _err(f"Training failed: {exc.message}", f"训练失败：{exc.message}")
        sys.exit(1)
    finally:
        repo.close()
    click.echo(f"Model trained on {records} records ({pairs} candidate pairs) and saved.\n"
               f"已用 {records} 条记录（{pairs} 个候选对）训练并保存模型。")


@mpi.command("relink")
@click.option("--db", help="Database URL / 数据库地址.")
@click.option("--dry-run", is_flag=True,
              help="Report what would change, write nothing / 只报告将会变更的内容，不写入.")
@click.option("--renormalize", is_flag=True,
              help="Re-read source Patients, not the stored normalised records / "
                   "重新读取来源患者记录并标准化.")
@click.option("--rebuild-golden", is_flag=True,
              help="Reassemble every golden record, not only changed ones / 重建全部主索引记录.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as JSON / 以 JSON 输出摘要.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes that score and decide (default: one per core, at most 4) / "
                   "评分与判定的进程数（默认每核一个，最多 4 个）.")
def mpi_relink(db: str | None, dry_run: bool, renormalize: bool, rebuild_golden: bool,
               as_json: bool, workers: int | None) -> None:
    """Re-link every source record under the current model / 用当前模型批量重新关联全部记录."""
    import json

    from huitong.mpi.relink import relink
    from huitong.mpi.relink_cli import relink_progress
    from huitong.mpi.service import IdentityService

    settings = _settings(db)
    repo = _open(settings.database_url, local_base=settings.base_url)
    try:
        service = IdentityService(repo, clock=repo.clock, new_id=repo.new_id)
        with relink_progress(enabled=not as_json) as progress:
            summary = relink(service, dry_run=dry_run, renormalize=renormalize,
                             rebuild_all=rebuild_golden, progress=progress, workers=workers)
    finally:
        repo.close()
    if as_json:
        click.echo(json.dumps(summary.to_json(), ensure_ascii=False, indent=1))
    else:
        click.echo("\n".join(line for line in summary.lines() if line))


def _register_components() -> None:
    """Command groups that components define next to the code they drive."""
    from huitong.access.cli_commands import client as client_commands
    from huitong.access.cli_commands import user as user_commands

    main.add_command(user_commands)
    main.add_command(client_commands)

    from huitong.ingest.cli_commands import ingest_csv, ingest_device, ingest_dicom, ingest_json

    for command in (ingest_csv, ingest_json, ingest_device, ingest_dicom):
        ingest.add_command(command)

    from huitong.audit.cli_commands import audit_cli_group

    main.add_command(audit_cli_group())

    from huitong.quality.cli_commands import quality_cli_group

    main.add_command(quality_cli_group())

    from huitong.terminology.cli import terminology_cli_group

    main.add_command(terminology_cli_group())


_register_components()
