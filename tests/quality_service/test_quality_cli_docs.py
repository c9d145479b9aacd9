"""``huitong quality …`` over a real database on both engines, and the generated rule page."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from click.testing import CliRunner
from quality_service_helpers import Clock, patient, systolic

from huitong.quality.cli_commands import quality_cli_group
from huitong.quality.service import QualityService
from huitong.store import open_repository

ROOT = Path(__file__).resolve().parents[2]


def _seed(url: str) -> None:
    repo = open_repository(url)
    try:
        QualityService(repo, clock=Clock()).install()
        with repo.transaction() as tx:
            tx.update(patient())
            tx.create(systolic(120))
            tx.create(systolic(20))
    finally:
        repo.close()


def test_cli_report_in_each_format(engine_url: str, tmp_path: Path) -> None:
    _seed(engine_url)
    runner = CliRunner()
    group = quality_cli_group()
    out = runner.invoke(group, ["report", "--org", "Organization/hosp-a", "--month", "2024-05",
                                "--format", "json", "--db", engine_url])
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["organization"] == "Organization/hosp-a" and body["month"] == "2024-05"
    assert body["overall"]["failed"] == 1
    assert body["worstRules"][0]["rule"] == "observation.systolic-in-range"

    target = tmp_path / "r.html"
    out = runner.invoke(group, ["report", "--format", "html", "--out", str(target),
                                "--db", engine_url])
    assert out.exit_code == 0 and "报告已写入" in out.output
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    out = runner.invoke(group, ["report", "--format", "csv", "--db", engine_url])
    assert out.output.splitlines()[0].startswith("section,organization,month")
    bad = runner.invoke(group, ["report", "--month", "2024/05", "--db", engine_url])
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output


def test_cli_config_and_rules(engine_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    group = quality_cli_group()
    config = tmp_path / "region.toml"
    config.write_text('region = "demo"\n[rules."patient.gender-present"]\nenabled = false\n',
                      encoding="utf-8")
    out = runner.invoke(group, ["config", str(config), "--db", engine_url])
    assert out.exit_code == 0 and "已生效" in out.output, out.output
    again = runner.invoke(group, ["config", str(config), "--db", engine_url])
    assert "already in force" in again.output
    out = runner.invoke(group, ["rules", "--json", "--db", engine_url])
    rules = {r["id"]: r for r in json.loads(out.output)}
    assert rules["patient.gender-present"]["enabled"] is False
    assert len(rules) >= 60
    out = runner.invoke(group, ["rules", "--db", engine_url])
    assert "enabled" in out.output and "已启用" in out.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"rules": {"nope": {}}}', encoding="utf-8")
    out = runner.invoke(group, ["config", str(broken), "--db", engine_url])
    assert out.exit_code == 2 and "rules.nope" in out.output and "未知的规则" in out.output


def test_rule_page_matches_the_library() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_quality_docs", ROOT / "tools" / "gen_quality_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = (ROOT / "docs" / "quality-rules.md").read_text(encoding="utf-8")
    assert page == module.rule_catalogue_page(), (
        "docs/quality-rules.md is stale: run python3 tools/gen_quality_docs.py")
