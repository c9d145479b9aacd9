"""A :class:`~huitong.quality.scores.QualityReport` as JSON, CSV or a self-contained HTML page.

All three are pure functions of the report. JSON is the operator dashboard's API shape; CSV
is one row per score (section, institution, month, category, rule) for spreadsheets; HTML
is one bilingual page with its CSS inline and its trend chart as inline SVG — no scripts,
no external files, so it can be mailed or archived as is.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from html import escape
from typing import Any

from huitong.quality.model import Category
from huitong.quality.scores import MonthScore, QualityReport, Score

__all__ = [
    "CATEGORY_NAMES",
    "REPORT_FORMATS",
    "render_csv",
    "render_html",
    "render_json",
    "render_report",
    "report_to_json",
]

CATEGORY_NAMES: dict[Category, tuple[str, str]] = {
    Category.CONFORMANCE: ("Conformance", "符合性"),
    Category.COMPLETENESS: ("Completeness", "完整性"),
    Category.PLAUSIBILITY: ("Plausibility", "合理性"),
    Category.CONSISTENCY: ("Consistency", "一致性"),
    Category.TIMELINESS: ("Timeliness", "及时性"),
}


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _score(score: Score) -> dict[str, Any]:
    return {
        "applicable": score.applicable,
        "failed": score.failed,
        "passRate": _rate(score.pass_rate),
    }


def report_to_json(report: QualityReport) -> dict[str, Any]:
    """The report as plain JSON-ready data (rates are fractions 0..1, or null)."""
    return {
        "region": report.region,
        "organization": report.organization,
        "month": report.month,
        "generatedAt": report.generated_at,
        "overall": _score(report.overall),
        "rulesChecked": report.rules_checked,
        "categories": {c.value: _score(s) for c, s in report.categories.items()},
        "organizations": {org: _score(s) for org, s in report.organizations.items()},
        "trend": [
            {
                "month": m.month,
                **_score(m.score),
                "change": _rate(m.change),
                "categories": {c.value: _score(s) for c, s in m.categories.items()},
            }
            for m in report.trend
        ],
        "worstRules": [
            {
                "rule": r.rule_id,
                "category": r.category.value,
                "severity": r.severity.value if r.severity else None,
                "message": {"en": r.message_en, "zh": r.message_zh},
                **_score(r.score),
            }
            for r in report.worst_rules
        ],
    }


def render_json(report: QualityReport) -> str:
    return json.dumps(report_to_json(report), ensure_ascii=False, indent=2)


_CSV_HEADER = (
    "section", "organization", "month", "category", "rule", "applicable", "failed", "pass_rate",
)  # fmt: skip


def render_csv(report: QualityReport) -> str:
    """One row per score. ``section`` is ``overall``, ``category``, ``organization``,
    ``trend``, ``trend-category`` or ``rule``; blank cells mean "all"."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_HEADER)
    org, month = report.organization or "", report.month or ""

    def row(section: str, o: str, m: str, cat: str, rule: str, score: Score) -> None:
        rate = "" if score.pass_rate is None else f"{score.pass_rate:.6f}"
        writer.writerow((section, o, m, cat, rule, score.applicable, score.failed, rate))

    row("overall", org, month, "", "", report.overall)
    for category, score in report.categories.items():
        row("category", org, month, category.value, "", score)
    for name, score in report.organizations.items():
        row("organization", name, month, "", "", score)
    for m in report.trend:
        row("trend", org, m.month, "", "", m.score)
        for category, score in m.categories.items():
            row("trend-category", org, m.month, category.value, "", score)
    for r in report.worst_rules:
        row("rule", org, month, r.category.value, r.rule_id, r.score)
    return out.getvalue()


# --- HTML ----------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1b1f24;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;
border-bottom:1px solid #d0d7de;padding-bottom:.2rem}.zh{color:#57606a}
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{text-align:left;
padding:.35rem .5rem;border-bottom:1px solid #eaeef2}td.n{text-align:right;
font-variant-numeric:tabular-nums}.meta{color:#57606a;font-size:.9rem}
.big{font-size:2.4rem;font-weight:600}.bar{background:#eaeef2;height:.6rem;width:8rem;
display:inline-block;vertical-align:middle}.bar i{display:block;height:100%;background:#2da44e}
.up{color:#1a7f37}.down{color:#cf222e}svg{max-width:100%}
""".strip()


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _both(en: str, zh: str) -> str:
    return f'{escape(en)} <span class="zh">{escape(zh)}</span>'


def _bar(rate: float | None) -> str:
    width = 0 if rate is None else round(rate * 100, 1)
    return f'<span class="bar"><i style="width:{width}%"></i></span>'


def _score_cells(score: Score) -> str:
    return (
        f'<td class="n">{score.applicable}</td><td class="n">{score.failed}</td>'
        f'<td class="n">{_pct(score.pass_rate)} {_bar(score.pass_rate)}</td>'
    )


def _change(change: float | None) -> str:
    if change is None:
        return "—"
    points = change * 100
    css = "up" if points > 0 else "down" if points < 0 else ""
    return f'<span class="{css}">{points:+.1f} pp</span>'


def _chart(trend: tuple[MonthScore, ...]) -> str:
    """An inline SVG line of the monthly pass rate (0–100 %)."""
    points = [(m.month, m.score.pass_rate) for m in trend]
    if not any(rate is not None for _, rate in points):
        return ""
    width, height, pad = 560, 160, 28
    step = (width - 2 * pad) / max(len(points) - 1, 1)
    coords = [
        (pad + i * step, pad + (1 - rate) * (height - 2 * pad), month, rate)
        for i, (month, rate) in enumerate(points)
        if rate is not None
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in coords)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#0969da">'
        f"<title>{escape(m)}: {_pct(r)}</title></circle>"
        f'<text x="{x:.1f}" y="{height - 6}" font-size="10" text-anchor="middle">'
        f"{escape(m)}</text>"
        for x, y, m, r in coords
    )
    return (
        f'<svg role="img" aria-label="pass rate by month / 各月通过率" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f'<line x1="{pad}" y1="{pad}" x2="{width - pad}" y2="{pad}" stroke="#eaeef2"/>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'stroke="#d0d7de"/><text x="2" y="{pad + 4}" font-size="10">100%</text>'
        f'<text x="2" y="{height - pad + 4}" font-size="10">0%</text>'
        f'<polyline fill="none" stroke="#0969da" stroke-width="2" points="{path}"/>'
        f"{dots}</svg>"
    )


def render_html(report: QualityReport) -> str:
    """A complete, self-contained bilingual HTML page."""
    scope_org = report.organization or "all institutions / 全部机构"
    scope_month = report.month or "all months / 全部月份"
    parts = [
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>Data quality report / 数据质量报告</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_both('Data quality report', '数据质量报告')}</h1>",
        '<p class="meta">',
        f"{_both('Region', '区域')}: {escape(report.region or '—')} · ",
        f"{_both('Institution', '机构')}: {escape(scope_org)} · ",
        f"{_both('Month', '月份')}: {escape(scope_month)} · ",
        f"{_both('Generated', '生成时间')}: {escape(report.generated_at)}</p>",
        f'<p><span class="big">{_pct(report.overall.pass_rate)}</span> ',
        f"{_both('of applicable checks passed', '的适用检查通过')} ",
        f"({report.overall.passed} / {report.overall.applicable}; ",
        f"{_both('rules applied', '适用规则数')}: {report.rules_checked})</p>",
        f"<h2>{_both('By category', '按类别')}</h2>",
        "<table><thead><tr>",
        f"<th>{_both('Category', '类别')}</th><th>{_both('Checks', '检查数')}</th>",
        f"<th>{_both('Failed', '未通过')}</th><th>{_both('Pass rate', '通过率')}</th>",
        "</tr></thead><tbody>",
    ]
    for category, score in report.categories.items():
        en, zh = CATEGORY_NAMES[category]
        parts.append(f"<tr><td>{_both(en, zh)}</td>{_score_cells(score)}</tr>")
    parts.append("</tbody></table>")

    if report.trend:
        parts += [
            f"<h2>{_both('Trend by month', '月度趋势')}</h2>",
            _chart(report.trend),
            "<table><thead><tr>",
            f"<th>{_both('Month', '月份')}</th><th>{_both('Checks', '检查数')}</th>",
            f"<th>{_both('Failed', '未通过')}</th><th>{_both('Pass rate', '通过率')}</th>",
            f"<th>{_both('Change', '环比变化')}</th></tr></thead><tbody>",
        ]
        for m in report.trend:
            parts.append(
                f"<tr><td>{escape(m.month)}</td>{_score_cells(m.score)}"
                f"<td>{_change(m.change)}</td></tr>"
            )
        parts.append("</tbody></table>")

    if report.organizations:
        parts += [
            f"<h2>{_both('By institution', '按机构')}</h2>",
            "<table><thead><tr>",
            f"<th>{_both('Institution', '机构')}</th><th>{_both('Checks', '检查数')}</th>",
            f"<th>{_both('Failed', '未通过')}</th><th>{_both('Pass rate', '通过率')}</th>",
            "</tr></thead><tbody>",
        ]
        for name, score in report.organizations.items():
            parts.append(f"<tr><td>{escape(name)}</td>{_score_cells(score)}</tr>")
        parts.append("</tbody></table>")

    parts.append(f"<h2>{_both('Rules failing most', '未通过最多的规则')}</h2>")
    if not report.worst_rules:
        parts.append(f"<p>{_both('No rule failed.', '没有未通过的规则。')}</p>")
    else:
        parts += [
            "<table><thead><tr>",
            f"<th>{_both('Rule', '规则')}</th><th>{_both('Checks', '检查数')}</th>",
            f"<th>{_both('Failed', '未通过')}</th><th>{_both('Pass rate', '通过率')}</th>",
            "</tr></thead><tbody>",
        ]
        for r in report.worst_rules:
            en, zh = CATEGORY_NAMES[r.category]
            severity = f" · {escape(r.severity.value)}" if r.severity else ""
            parts.append(
                f"<tr><td><code>{escape(r.rule_id)}</code> "
                f'<span class="meta">{_both(en, zh)}{severity}</span><br>'
                f'{escape(r.message_en)}<br><span class="zh">{escape(r.message_zh)}</span>'
                f"</td>{_score_cells(r.score)}</tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</body></html>\n")
    return "".join(parts)


REPORT_FORMATS: dict[str, tuple[str, Callable[[QualityReport], str]]] = {
    "html": ("text/html; charset=utf-8", render_html),
    "csv": ("text/csv; charset=utf-8", render_csv),
    "json": ("application/json", render_json),
}


def render_report(report: QualityReport, fmt: str) -> tuple[str, str]:
    """``(media type, text)`` of the report in ``fmt`` (``html``, ``csv`` or ``json``);
    ValueError names the formats for anything else."""
    try:
        media_type, render = REPORT_FORMATS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown report format {fmt!r} (use {', '.join(REPORT_FORMATS)})"
        ) from None
    return media_type, render(report)
