"""The `huitong` command: demo loading, database upgrade, the loopback-only rule."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from huitong.cli import main
from huitong.store import open_repository
from huitong.store.migrate import migrations_for
from huitong_testdata import source_patients


def test_demo_loads_a_region_through_the_api_and_is_idempotent(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    args = ["demo", "--db", db, "--residents", "8", "--no-serve"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "Total" in first.output and "合计" in first.output
    repo = open_repository(db)
    counts = repo.counts_by_type()
    assert source_patients(repo) == 8  # plus a golden record per resident (identity service)
    assert counts["Organization"] >= 8  # 3+ hospitals and 5+ community health centres
    assert counts["Observation"] > 0 and counts["Encounter"] > 0
    repo.close()
    # Demo entries are PUTs with stable ids: loading again updates, never duplicates.
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    repo = open_repository(db)
    assert repo.counts_by_type() == counts
    repo.close()


def test_db_upgrade_reports_applied_then_up_to_date(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'u.db'}"
    first = CliRunner().invoke(main, ["db", "upgrade", "--db", db])
    assert first.exit_code == 0
    shipped = [m.version for m in migrations_for("sqlite")]
    assert f"Applied migrations {shipped}" in first.output and "已执行迁移" in first.output
    second = CliRunner().invoke(main, ["db", "upgrade", "--db", db])
    assert "up to date" in second.output and "已是最新" in second.output


def test_postgres_db_upgrade(postgres_url: str) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--db", postgres_url])
    assert result.exit_code == 0
    assert "up to date" in result.output  # the fixture already migrated it


def test_serve_refuses_non_loopback_without_authentication(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    result = CliRunner().invoke(main, ["serve", "--db", db, "--host", "0.0.0.0"],
                                env={"HUITONG_AUTH": "off"})
    assert result.exit_code == 2
    assert "loopback" in result.output and "回环" in result.output


def test_bad_database_url_is_a_bilingual_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--db", "mysql://x"])
    assert result.exit_code == 1
    assert "unsupported database URL" in result.output and "不支持的数据库地址" in result.output


def test_banners_say_whether_authentication_is_on() -> None:
    from huitong import cli

    assert "OFF" in cli.NO_AUTH_BANNER and "已关闭" in cli.NO_AUTH_BANNER
    assert "is on" in cli.AUTH_BANNER and "已启用" in cli.AUTH_BANNER
    assert "not enforced" not in cli.AUTH_BANNER  # access control is enforced in the queries
