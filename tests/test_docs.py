"""Docs that cannot drift: settings, CLI commands and the README's promises are checked."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from click.testing import CliRunner

from huitong.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _load_tool(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_doc_is_generated_from_settings() -> None:
    expected = _load_tool("gen_config_docs").render()
    assert (ROOT / "docs" / "configuration.md").read_text() == expected, (
        "docs/configuration.md is stale: run python tools/gen_config_docs.py"
    )


def test_api_doc_is_generated_from_the_server_tables() -> None:
    expected = _load_tool("gen_api_docs").render()
    assert (ROOT / "docs" / "api.md").read_text() == expected, (
        "docs/api.md is stale: run python tools/gen_api_docs.py"
    )


def _commands(group, prefix: str = "huitong"):  # type: ignore[no-untyped-def]
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}"


def test_every_cli_command_is_in_both_readmes() -> None:
    for readme in ("README.md", "README.zh-CN.md"):
        text = (ROOT / readme).read_text()
        for command in _commands(main):
            assert f"`{command}" in text, f"{command} is not documented in {readme}"


def test_readme_gives_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    for readme in ("README.md", "README.zh-CN.md"):
        text = (ROOT / readme).read_text()
        assert "python3 dev.py demo" in text and "python3 dev.py test" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec python3 dev.py test$", ci, re.M)


def test_cli_help_is_bilingual() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "Huitong" in result.output and "汇通" in result.output
    for command in ("serve", "demo", "import", "db"):
        sub = CliRunner().invoke(main, [command, "--help"])
        assert sub.exit_code == 0
        assert re.search(r"[\u4e00-\u9fff]", sub.output), f"{command} --help has no Chinese"
