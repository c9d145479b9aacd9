"""The ``huitong terminology`` command group, before the main CLI wires it."""

from __future__ import annotations

import json

import click
from click.testing import CliRunner
from term_data import DATA

from huitong.terminology.cli import terminology_group


def test_load_writes_code_system(tmp_path):
    out = tmp_path / "atc.json"
    result = CliRunner().invoke(terminology_group(), [
        "load", "atc", str(DATA / "atc_ddd.csv"), "--version", "2025", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "已加载" in result.output and "Loaded" in result.output
    assert json.loads(out.read_text(encoding="utf-8"))["version"] == "2025"


def test_save_hook_and_variants(tmp_path):
    saved = []

    def save(cs, options):
        saved.append(cs)
        return "memory"

    result = CliRunner().invoke(terminology_group(save), [
        "load", "loinc", str(DATA / "Loinc.csv"), "--version", "2.77",
        "--variant", f"{DATA / 'zhCN5LinguisticVariant.csv'}:zh-CN"])
    assert result.exit_code == 0, result.output
    assert saved[0]["url"] == "http://loinc.org" and "memory" in result.output


def test_bilingual_usage_errors():
    runner = CliRunner()
    group: click.Group = terminology_group(lambda cs, o: "x")
    no_version = runner.invoke(group, ["load", "atc", str(DATA / "atc_ddd.csv")])
    assert no_version.exit_code == 2 and "--version" in no_version.output
    local = runner.invoke(group, ["load", "local", str(DATA / "local_codes.csv"),
                                  "--version", "1"])
    assert local.exit_code == 2 and "本地代码表" in local.output
    bad = runner.invoke(group, ["load", "icd10-cn", str(DATA / "atc_ddd.csv"),
                                "--version", "2.0"])
    assert bad.exit_code == 1 and "无法加载" in bad.output
