"""The rule catalogue as Markdown, generated from the rules themselves.

Operators tune rules by id and parameter name, so the page listing them must not drift from
the code: :func:`render_rule_catalogue` writes it from a rule set (the shipped defaults or a
region's configuration), and a documentation test can compare it with the checked-in page.
"""

from __future__ import annotations

from collections.abc import Iterable

from huitong.quality.model import ExpressionCheck, ParamValue, Rule
from huitong.quality.report import CATEGORY_NAMES

__all__ = ["render_rule_catalogue"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _param(value: ParamValue) -> str:
    if isinstance(value, tuple):
        shown = ", ".join(value[:6]) + (f", … ({len(value)} in all)" if len(value) > 6 else "")
        return f"[{shown}]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def render_rule_catalogue(rules: Iterable[Rule]) -> str:
    """One Markdown section per resource type, one table row per rule: id, category,
    severity, whether enabled, the check, the parameters and both messages."""
    by_type: dict[str, list[Rule]] = {}
    for rule in rules:
        for rtype in rule.resource_types:
            by_type.setdefault(rtype, []).append(rule)
    lines = ["# Data-quality rules / 数据质量规则", ""]
    for rtype, items in by_type.items():
        lines += [
            f"## {rtype}",
            "",
            "| id | category 类别 | severity 级别 | check 检查 | parameters 参数 | message 提示 |",
            "|---|---|---|---|---|---|",
        ]
        for r in items:
            en, zh = CATEGORY_NAMES[r.category]
            check = (
                f"`{r.check.expect}`"
                if isinstance(r.check, ExpressionCheck)
                else f"predicate `{r.check.name}`"
            )
            if r.check.when:
                check += f" when `{r.check.when}`"
            params = "; ".join(f"`{k}` = {_param(v)}" for k, v in r.params.items()) or "—"
            severity = r.severity.value + ("" if r.enabled else " (off)")
            lines.append(
                f"| `{r.id}` | {en} {zh} | {severity} | {_cell(check)} | {_cell(params)} "
                f"| {_cell(r.message_en)}<br>{_cell(r.message_zh)} |"
            )
        lines.append("")
    return "\n".join(lines)
