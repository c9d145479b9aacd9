"""Write docs/configuration.md from huitong.config.SETTINGS (run after adding a setting).

tests/test_docs.py fails when the file differs from what this script would write.
"""

from __future__ import annotations

from pathlib import Path

from huitong.config import SETTINGS

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def render() -> str:
    lines = [
        "# Configuration / 配置",
        "",
        "Generated from `src/huitong/config.py` by `tools/gen_config_docs.py`; a test fails "
        "when this page and the code disagree.",
        "",
        "| variable | default | meaning | 说明 |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS.values():
        default = f"`{s.default}`" if s.default else "(see meaning)"
        lines.append(f"| `{s.env}` | {default} | {s.help_en} | {s.help_zh} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC}")
