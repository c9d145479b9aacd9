"""Data quality (operator console): scores per institution with their monthly trend, the
worst rules, and the findings behind a rule — through the quality service, as
``/api/quality`` serves them.

    GET /app/operator/quality?month=YYYY-MM
    GET /app/operator/quality/findings?org=&rule=&month=&severity=&offset=

A score is the pass rate of the checks that applied (``Score.pass_rate``). Findings show
the resource reference, the rule and its message, the institution and the month: ids only,
no clinical content (an operator may see that a record failed a check, not the record).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from huitong.fhir.dates import format_instant
from huitong.fhir.errors import Category, FhirError
from huitong.quality.store import FindingQuery
from huitong.store.repository import Repository
from huitong.web.charts import Band, Chart, Point, Series
from huitong.web.display import reference_parts
from huitong.web.rendering import View
from huitong.web.site import Site

__all__ = ["findings_page", "scores_page", "trend_chart"]

TREND_MONTHS = 12
MAX_INSTITUTIONS_CHARTED = 6
PAGE_SIZE = 50
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_SEVERITIES = ("reject", "warn")


def _unavailable(site: Site, view: View) -> Response:
    return site.pages.render(view, "unavailable.html", feature="quality", connected=False,
                             section="operator", subsection="quality")  # fmt: skip


def _month(request: Request, view: View) -> str | None:
    month = request.query_params.get("month") or None
    if month is not None and not _MONTH.fullmatch(month):
        raise FhirError(Category.INVALID, view.t("quality.bad_month"))
    return month


@dataclass(frozen=True, slots=True)
class InstitutionRow:
    organization: str  # the reference the counters are kept by (Organization/…)
    name: str  # the Organization's name where the directory knows it
    rate: float | None  # 0..1
    applicable: int
    failed: int
    trend: list[tuple[str, float | None]]  # (month, pass rate)
    # When its feed went live (YYYY-MM-DD, UTC) and how that is known ("first-receipt" or
    # "config"): the timeliness rules judge only what happened after it.
    live_since: str | None = None
    live_set_by: str | None = None


def _month_start(month: str) -> datetime:
    return datetime(int(month[:4]), int(month[5:7]), 15, tzinfo=UTC)


def trend_chart(rows: list[InstitutionRow], view: View) -> Chart:
    """Pass rate (%) by month, one line per institution (the lowest-scoring first)."""
    series = []
    for tone, row in enumerate(rows[:MAX_INSTITUTIONS_CHARTED]):
        points = [Point(_month_start(m), round(r * 100, 1), m) for m, r in row.trend
                  if r is not None]  # fmt: skip
        if points:
            series.append(Series(row.name, points, tone=tone))
    months = sorted({m for row in rows for m, _ in row.trend})
    domain = None
    if months:
        last = _month_start(months[-1])
        first = last.replace(year=last.year - 1) if len(months) < 12 else _month_start(months[0])
        domain = (first, last)
    return Chart(
        chart_id="chart-quality-trend",
        title=view.t("quality.trend.title"),
        description=view.t("quality.trend.desc", n=len(series),
                           first=months[0] if months else "—",
                           last=months[-1] if months else "—"),
        unit="%", series=series, bands=[Band(None, 95.0, view.t("quality.trend.target"))],
        domain=domain, height=300,
    )


def _name(repo: Repository, organization: str) -> str:
    """The Organization's name (directory data, readable by every role), else the key."""
    parts = reference_parts(organization)
    if parts is None or parts[0] != "Organization":
        return organization
    try:
        return str(repo.read("Organization", parts[1]).resource.get("name") or organization)
    except FhirError:
        return organization


def _scores(site: Site, view: View, month: str | None) -> dict[str, Any]:
    quality = site.services.quality
    assert quality is not None
    repo = site.repo(view)
    report = quality.report(month=month, trend_months=TREND_MONTHS)
    live = {org: (format_instant(at)[:10], how) for org, at, how in quality.go_live()}
    rows = []
    for org, score in report.organizations.items():
        own = quality.report(organization=org, month=month, trend_months=TREND_MONTHS)
        since, how = live.get(org, (None, None))
        rows.append(InstitutionRow(org, _name(repo, org), score.pass_rate, score.applicable,
                                   score.failed,
                                   [(m.month, m.score.pass_rate) for m in own.trend],
                                   since, how))
    rows.sort(key=lambda r: (r.rate is None, r.rate if r.rate is not None else 0.0))
    return {"report": report, "rows": rows}


async def scores_page(site: Site, request: Request, view: View) -> Response:
    if site.services.quality is None:
        return _unavailable(site, view)
    month = _month(request, view)
    data = await site.call(_scores, site, view, month)
    return site.pages.render(
        view, "operator_quality.html", month=month or "", chart=trend_chart(data["rows"], view),
        section="operator", subsection="quality", **data,
    )


async def findings_page(site: Site, request: Request, view: View) -> Response:
    quality = site.services.quality
    if quality is None:
        return _unavailable(site, view)
    q = request.query_params
    severity = q.get("severity") or None
    if severity is not None and severity not in _SEVERITIES:
        raise FhirError(Category.INVALID, view.t("quality.bad_severity"))
    raw = q.get("offset", "0")
    if not raw.isdigit() or len(raw) > 9:
        raise FhirError(Category.INVALID, view.t("error.bad_number", name="offset"))
    filters = {k: (q.get(k) or "").strip()[:200] for k in ("org", "rule")}
    query = FindingQuery(organization=filters["org"] or None, rule_id=filters["rule"] or None,
                         severity=severity, month=_month(request, view), count=PAGE_SIZE,
                         offset=int(raw))  # fmt: skip
    found, total = await site.call(quality.findings, query)
    return site.pages.render(
        view, "operator_findings.html", findings=found, total=total, offset=query.offset,
        page_size=PAGE_SIZE, filters=filters, month=query.month or "",
        severity=severity or "", section="operator", subsection="quality",
    )
