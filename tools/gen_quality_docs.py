"""Write docs/quality-rules.md from the shipped rule library (run after changing a rule).

    python3 tools/gen_quality_docs.py          # rewrite the page
    python3 tools/gen_quality_docs.py --check  # exit 1 when the page is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from huitong.quality import default_rules, render_rule_catalogue

PAGE = Path(__file__).resolve().parents[1] / "docs" / "quality-rules.md"


def rule_catalogue_page() -> str:
    """The page's full text: the catalogue of every shipped rule with its defaults."""
    return render_rule_catalogue(default_rules()) + "\n"


def main(argv: list[str]) -> int:
    text = rule_catalogue_page()
    if "--check" in argv:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE} is out of date: run python3 tools/gen_quality_docs.py\n"
                  f"{PAGE} 已过期：请运行 python3 tools/gen_quality_docs.py")
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
