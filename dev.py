#!/usr/bin/env python3
"""Huitong's two set-up commands, on any machine with Python 3.11+.

    python3 dev.py demo     start Huitong with a synthetic demo region (SQLite)
    python3 dev.py test     run every check: ruff, then the whole test suite

Both create ``.venv`` on first use and install Huitong into it (again only when
``pyproject.toml`` changes). Extra arguments go to ``huitong demo`` or ``pytest``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".huitong-installed"


def say(en: str, zh: str) -> None:
    print(f"[huitong] {en} / {zh}", flush=True)


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit("Huitong needs Python 3.11 or newer / 汇通需要 Python 3.11 或更高版本")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want and PY.exists():
        return
    if not PY.exists():
        say("creating .venv", "正在创建 .venv 虚拟环境")
        venv.EnvBuilder(with_pip=True).create(VENV)
    say("installing Huitong and its test tools", "正在安装汇通及测试工具")
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "-q", "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(want)


def run(args: list[str]) -> int:
    return subprocess.run(args, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    ensure_env()
    command, rest = argv[0], argv[1:]
    if command == "demo":
        return run([str(BIN / "huitong"), "demo", *rest])
    say("ruff (lint)", "ruff 代码检查")
    if run([str(PY), "-m", "ruff", "check", "src", "tests", "bench", "tools", "dev.py"]):
        return 1
    workers = ["-n", os.environ.get("HUITONG_TEST_WORKERS", "2")]
    return run([str(PY), "-m", "pytest", *workers, *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
