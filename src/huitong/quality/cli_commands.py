"""``huitong quality …``: reports, the rule list and the region configuration.

Registered on the main command with ``main.add_command(quality_cli_group())``. Every command
takes ``--db`` like the others; messages are in English and Simplified Chinese.

    huitong quality report --org Organization/1 --month 2024-05 --format html --out r.html
    huitong quality rules
    huitong quality config region.toml
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from huitong.cli_support import DB_OPTION, fail, open_database

__all__ = ["quality_cli_group"]

_DB = DB_OPTION
_fail = fail


def _run(db_url: str | None, work: Callable[[Any], Any]) -> Any:
    from huitong.quality.service import QualityService

    _, repo = open_database(db_url)
    try:
        service = QualityService(repo, clock=repo.clock)
        service.reload()
        return work(service)
    finally:
        repo.close()


def quality_cli_group() -> click.Group:
    """The ``quality`` command group."""

    @click.group("quality")
    def quality() -> None:
        """Data quality: reports, rules, configuration / 数据质量：报告、规则与配置."""

    @quality.command("report")
    @click.option("--org", help="Institution, e.g. Organization/123 (default: all) / 机构.")
    @click.option("--month", help="Month YYYY-MM (default: all) / 月份.")
    @click.option("--format", "fmt", type=click.Choice(["html", "csv", "json"]),
                  default="html", show_default=True, help="Report format / 报告格式.")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write to this file (default: standard output) / 输出文件.")
    @_DB
    def report(org: str | None, month: str | None, fmt: str, out: Path | None,
               db_url: str | None) -> None:
        """Quality scores per institution, category and month / 按机构、类别与月份的质量评分."""
        from huitong.quality.report import render_report

        if month is not None and not (len(month) == 7 and month[4] == "-"
                                      and month.replace("-", "").isdigit()):
            _fail(f"Month must be YYYY-MM, not {month!r}.",
                  f"月份应为 YYYY-MM 格式，而非 {month!r}。", 2)
        built = _run(db_url, lambda s: s.report(organization=org, month=month))
        _, text = render_report(built, fmt)
        if out is None:
            click.echo(text, nl=not text.endswith("\n"))
            return
        out.write_text(text, encoding="utf-8")
        click.echo(f"Report written to {out}\n报告已写入 {out}")

    @quality.command("rules")
    @click.option("--json", "as_json", is_flag=True, help="As JSON / 以 JSON 输出.")
    @_DB
    def rules(as_json: bool, db_url: str | None) -> None:
        """List the rules as configured now / 列出当前配置下的规则."""
        import orjson

        ruleset = _run(db_url, lambda s: s.ruleset)
        if as_json:
            click.echo(orjson.dumps([r.to_json() for r in ruleset.rules],
                                    option=orjson.OPT_INDENT_2).decode())  # fmt: skip
            return
        for r in ruleset.rules:
            flag = "on " if r.enabled else "off"
            click.echo(f"{r.id:<48} {flag} {r.severity.value:<6} {r.category.value:<13} "
                       f"{r.message_zh}")  # fmt: skip
        enabled = sum(r.enabled for r in ruleset.rules)
        click.echo(f"{len(ruleset.rules)} rules, {enabled} enabled\n"
                   f"共 {len(ruleset.rules)} 条规则，已启用 {enabled} 条")  # fmt: skip

    @quality.command("config")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @_DB
    def config(path: Path, db_url: str | None) -> None:
        """Load the region's rule configuration (JSON or TOML) / 载入区域规则配置."""
        from huitong.quality.config import QualityConfigError

        try:
            stored = _run(db_url, lambda s: s.load_config_file(path))
        except QualityConfigError as exc:
            _fail(f"Invalid quality configuration:\n{exc.message_en}",
                  f"数据质量配置无效：\n{exc.message_zh}", 2)  # fmt: skip
            return
        if stored:
            click.echo(f"Configuration {path.name} is now in force.\n配置 {path.name} 已生效。")
        else:
            click.echo(f"Configuration {path.name} was already in force.\n"
                       f"配置 {path.name} 已在生效中，无需更改。")  # fmt: skip

    return quality
