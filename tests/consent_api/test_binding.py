"""Binding: with authentication on, `huitong serve --host 0.0.0.0` serves; with it off, any
address but loopback is refused loudly, in both languages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner

from huitong.cli import main


@pytest.mark.parametrize(
    ("auth", "host", "serves"),
    [
        ("on", "0.0.0.0", True),
        ("on", "127.0.0.1", True),
        ("off", "127.0.0.1", True),
        ("off", "0.0.0.0", False),
        ("off", "192.168.1.20", False),
    ],
)
def test_binding_follows_authentication(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth: str, host: str, serves: bool
) -> None:
    bound: list[str] = []

    def fake_run(app: Any, **kw: Any) -> None:  # the server itself is not under test here
        bound.append(kw["host"])

    monkeypatch.setattr(uvicorn, "run", fake_run)
    db = f"sqlite:///{tmp_path / 's.db'}"
    result = CliRunner().invoke(
        main, ["serve", "--db", db, "--host", host], env={"HUITONG_AUTH": auth}
    )
    if serves:
        assert result.exit_code == 0, result.output
        assert bound == [host]
    else:
        assert result.exit_code == 2 and bound == []
        assert "REFUSING" in result.output and "HUITONG_AUTH=off" in result.output
        assert "拒绝监听" in result.output and "回环" in result.output
