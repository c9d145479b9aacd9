"""``huitong user …`` and ``huitong client …`` on a SQLite file (the commands open the
database themselves, as every CLI command does)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from auth_helpers import backend_key
from click.testing import CliRunner

from huitong.access.cli_commands import client, user


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_user_commands(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the production Argon2 cost is fine once or twice
    runner = CliRunner()
    added = runner.invoke(user, ["add", "li.wei", "--role", "clinician", "--organization",
                                 "org-1", "--password-stdin", "--db", db],
                          input="a long password\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "Created user li.wei" in added.output and "已创建用户" in added.output
    dup = runner.invoke(user, ["add", "li.wei", "--role", "clinician", "--organization", "o",
                               "--password-stdin", "--db", db], input="a long password\n")
    assert dup.exit_code == 1 and "已存在" in dup.output
    totp = runner.invoke(user, ["enrol-totp", "li.wei", "--db", db])
    assert totp.exit_code == 0 and "otpauth://totp/" in totp.output
    listed = runner.invoke(user, ["list", "--json", "--db", db])
    [row] = json.loads(listed.output)
    assert row["username"] == "li.wei" and row["totp"] is True and "password" not in row
    assert "a long password" not in listed.output
    disabled = runner.invoke(user, ["disable", "li.wei", "--db", db])
    assert disabled.exit_code == 0 and "已停用" in disabled.output
    missing = runner.invoke(user, ["set-password", "nobody", "--password-stdin", "--db", db],
                            input="another password\n")  # fmt: skip
    assert missing.exit_code == 1 and "没有用户" in missing.output


def test_client_commands(db: str, tmp_path: Path) -> None:
    runner = CliRunner()
    conf = runner.invoke(client, ["add", "confidential", "--id", "feed", "--scope",
                                  "system/*.rs", "--db", db])  # fmt: skip
    assert conf.exit_code == 0, conf.output
    assert "仅显示一次" in conf.output and len(conf.output.strip().splitlines()[-1]) >= 40
    _, public = backend_key("ES384", "k-1")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public]}))
    backend = runner.invoke(client, ["add", "backend", "--id", "lab", "--scope",
                                     "system/Observation.rs", "--jwks", str(jwks), "--db", db])
    assert backend.exit_code == 0, backend.output
    bad = runner.invoke(client, ["add", "backend", "--id", "lab2", "--scope", "user/*.rs",
                                 "--jwks", str(jwks), "--db", db])  # fmt: skip
    assert bad.exit_code == 1 and "system/" in bad.output
    listed = json.loads(runner.invoke(client, ["list", "--json", "--db", db]).output)
    assert [c["client_id"] for c in listed] == ["feed", "lab"]
    assert listed[1]["kids"] == ["k-1"]
    assert runner.invoke(client, ["remove", "feed", "--db", db]).exit_code == 0
    assert runner.invoke(client, ["remove", "feed", "--db", db]).exit_code == 1
