"""The ``huitong terminology`` command group (wired into ``huitong`` by the main CLI).

``huitong terminology load KIND [FILE] --version V [--variant FILE:LANG]… [--out FILE]``
parses with the loader registered for KIND and hands the CodeSystem to ``save``, the one
side effect. :func:`terminology_cli_group` is the group the main CLI registers: ``load``
takes ``--db`` and stores the release in the repository (a new version keeps the old one),
and ``list`` shows the stored code systems. Without a ``save`` the CodeSystem is written as
JSON to ``--out``. Every message is in English and Chinese.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from huitong.fhir.errors import FhirError
from huitong.terminology.loaders import LOADERS

__all__ = ["terminology_cli_group", "terminology_group"]

Save = Callable[[dict[str, Any], dict[str, Any]], str]  # (CodeSystem, options) -> where it went


def _err(en: str, zh: str) -> None:
    click.secho(f"{en}\n{zh}", fg="red", err=True)


def _write_json(code_system: dict[str, Any], options: dict[str, Any]) -> str:
    out = options.get("out")
    if not out:
        raise click.UsageError("--out is required here / 此处必须提供 --out")
    Path(out).write_text(json.dumps(code_system, ensure_ascii=False), encoding="utf-8")
    return str(out)


def terminology_group(
    save: Save | None = None, *, load_options: tuple[click.Option, ...] = ()
) -> click.Group:
    """The ``terminology`` group; ``save`` persists a loaded CodeSystem (default: --out).
    ``load_options`` are more ``load`` options, passed to ``save`` in its options."""
    persist = save or _write_json
    kinds = "\n".join(f"  {k:<11} {s.help_en} / {s.help_zh}" for k, s in LOADERS.items())

    @click.group("terminology")
    def group() -> None:
        """Code systems, value sets and maps / 术语：代码系统、值集与映射."""

    @group.command("load", epilog=f"Kinds / 类型:\n{kinds}")
    @click.argument("kind", type=click.Choice(sorted(LOADERS)))
    @click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
    @click.option("--version", "version", help="Release version / 版本号.")
    @click.option("--variant", "variants", multiple=True,
                  help="Translation file as FILE:LANG / 语言变体文件（文件:语言）.")
    @click.option("--url", help="Canonical URL (local lists) / 规范地址（本地代码表）.")
    @click.option("--name", help="Name (local lists) / 名称（本地代码表）.")
    @click.option("--publisher", help="Publisher (local lists) / 发布者（本地代码表）.")
    @click.option("--out", type=click.Path(dir_okay=False), help="Write JSON here / 输出文件.")
    def load(kind: str, file: str | None, version: str | None, variants: tuple[str, ...],
             url: str | None, name: str | None, publisher: str | None,
             out: str | None, **more: Any) -> None:
        """Load a code system release / 加载代码系统的一个版本."""
        spec = LOADERS[kind]
        if spec.file and not file:
            _err(f"{kind} needs a FILE.", f"{kind} 需要提供文件。")
            sys.exit(2)
        if spec.needs_version and not version:
            _err(f"{kind} needs --version.", f"{kind} 需要提供 --version。")
            sys.exit(2)
        if spec.local and not (url and name and publisher):
            _err("A local list needs --url, --name and --publisher.",
                 "本地代码表需要提供 --url、--name 和 --publisher。")
            sys.exit(2)
        pairs = []
        for v in variants:
            path, sep, lang = v.rpartition(":")
            if not sep or not path or not lang:
                _err(f"--variant must be FILE:LANG, got {v}",
                     f"--variant 应为 文件:语言，实际为 {v}")
                sys.exit(2)
            pairs.append((path, lang))
        try:
            code_system = spec.load(path=file, version=version, variants=pairs, url=url,
                                    name=name, publisher=publisher)
        except FhirError as exc:
            _err(f"Cannot load {kind}: {exc.message}", f"无法加载 {kind}：{exc.message}")
            sys.exit(1)
        options = {"out": out, "kind": kind, **more}
        where = persist(code_system, options)
        n, ver = code_system.get("count", 0), code_system.get("version")
        click.echo(
            f"Loaded {code_system['url']} version {ver}: {n} concepts → {where}\n"
            f"已加载 {code_system['url']} 版本 {ver}：{n} 个概念 → {where}"
        )

    load.params.extend(load_options)
    return group


def terminology_cli_group() -> click.Group:
    """``huitong terminology``: ``load`` (with ``--db``) stores into the repository."""
    from huitong.terminology.cli_store import DB_OPTION, list_command, save_to_database

    group = terminology_group(save_to_database, load_options=(DB_OPTION,))
    group.add_command(list_command)
    return group
