"""The auditor's pages in the operator console (role ``auditor``: only auditors read the
whole log, as in ``/api/audit``).

    GET  /app/operator/audit?action=&user=&patient=&since=&until=&before=
                                           search the log, newest first; each entry's
                                           inclusion proof checked against the latest
                                           signed checkpoint
    GET  /app/operator/audit/entries/{index}   one entry: summary, its FHIR AuditEvent,
                                           its proof and the verdict
    POST /app/operator/audit/check         check a proof document someone brings (CSRF)
    POST /app/operator/audit/verify        recompute the whole tree and check every
                                           signed checkpoint (``AuditService.verify``; CSRF)

Every read is audited (``audit-read``), as the API's.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from huitong.audit.entry import ACTIONS
from huitong.fhir.errors import Category, FhirError
from huitong.web.audit_proofs import check_pasted_proof, proof_document, search_rows
from huitong.web.display import CST
from huitong.web.forms import read_form
from huitong.web.rendering import View
from huitong.web.site import Site

__all__ = ["check_proof", "entry_page", "search_page", "verify_log"]

PAGE = 50
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ID = re.compile(r"[A-Za-z0-9\-._]{1,64}")


def _service(site: Site, view: View) -> Any:
    if site.services.audit is None:
        raise FhirError(Category.UNAVAILABLE, view.t("auditpage.off"))
    return site.services.audit.service


def _day_us(raw: str, view: View, *, end: bool) -> int | None:
    """A date (China Standard Time, as the pages show times) as µs since the epoch: its
    start, or with ``end`` the start of the next day (an exclusive bound)."""
    raw = raw.strip()
    if not raw:
        return None
    if not _DATE.fullmatch(raw):
        raise FhirError(Category.INVALID, view.t("auditpage.error.date"))
    try:
        day = datetime.fromisoformat(raw).date()
    except ValueError:
        raise FhirError(Category.INVALID, view.t("auditpage.error.date")) from None
    if end:
        day += timedelta(days=1)
    return int(datetime.combine(day, time(), CST).timestamp() * 1_000_000)


def _filters(request: Request, view: View) -> dict[str, Any]:
    q = request.query_params
    action = q.get("action", "").strip()
    if action and action not in ACTIONS:
        raise FhirError(Category.INVALID, view.t("auditpage.error.action"))
    user = q.get("user", "").strip()
    patient = q.get("patient", "").strip().removeprefix("Patient/")
    for value in (user, patient):
        if value and not _ID.fullmatch(value):
            raise FhirError(Category.INVALID, view.t("auditpage.error.id"))
    since = _day_us(q.get("since", ""), view, end=False)
    until = _day_us(q.get("until", ""), view, end=True)
    if since is not None and until is not None and until <= since:
        raise FhirError(Category.INVALID, view.t("auditpage.error.order"))
    before_raw = q.get("before", "")
    before = int(before_raw) if before_raw.isascii() and before_raw.isdigit() \
        and len(before_raw) < 18 else None  # fmt: skip
    return {"action": action or None, "user": user or None, "patient": patient or None,
            "since": since, "until": until, "before_seq": before}  # fmt: skip


def _render(site: Site, view: View, status: int = 200, **context: Any) -> Response:
    base: dict[str, Any] = {
        "rows": [], "more": None, "checkpoint": None, "problem": "", "report": None,
        "pasted": None, "pasted_text": "", "actions": sorted(ACTIONS),
        "form": {k: view_query(view, k) for k in ("action", "user", "patient", "since",
                                                   "until")},
        "section": "operator", "subsection": "audit",
    }
    base.update(context)
    return site.pages.render(view, "operator_audit.html", status, **base)


def view_query(view: View, key: str) -> str:
    return next((v for k, v in view.query if k == key), "")


async def _search(site: Site, request: Request, view: View) -> dict[str, Any]:
    service = _service(site, view)
    try:
        filters = _filters(request, view)
    except FhirError as err:
        return {"problem": view.pick(err.message), "status": 400}
    accounts = site.services.auth.accounts if site.services.auth is not None else None
    who = view.who
    address = request.client.host if request.client else None
    rows, more, checkpoint = await site.call(
        search_rows, service, site.services.repo, accounts, who.principal if who else None,
        count=PAGE, address=address, **filters,
    )  # fmt: skip
    return {"rows": rows, "more": more, "checkpoint": checkpoint, "status": 200}


async def search_page(site: Site, request: Request, view: View) -> Response:
    found = await _search(site, request, view)
    status = found.pop("status")
    return _render(site, view, status, **found)


async def entry_page(site: Site, request: Request, view: View) -> Response:
    service = _service(site, view)
    raw = request.path_params["index"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise FhirError(Category.NOT_FOUND, view.t("error.no_such_resource"))
    index = int(raw)
    who = view.who
    address = request.client.host if request.client else None

    def load() -> tuple[dict[str, Any], dict[str, Any]]:
        from huitong.audit.auditevent import to_audit_event

        document = proof_document(service, index, who.principal if who else None, address)
        stored = service.entry_at(index)
        return document, to_audit_event(stored.entry, id=str(index))

    document, event = await site.call(load)
    return site.pages.render(
        view, "operator_audit_entry.html", doc=document,
        proof_json=orjson.dumps({k: v for k, v in document.items() if k != "entry"},
                                option=orjson.OPT_INDENT_2).decode(),
        event_json=orjson.dumps(event, option=orjson.OPT_INDENT_2).decode(),
        section="operator", subsection="audit",
    )  # fmt: skip


async def check_proof(site: Site, request: Request, view: View) -> Response:
    fields = await read_form(request, view, site.services.secret)
    service = _service(site, view)
    text = fields.get("proof", "").strip()
    if not text:
        return _render(site, view, 400, problem=view.t("auditpage.check.empty"))
    result = await site.call(check_pasted_proof, service, text)
    found = await _search(site, request, view)  # the newest entries below, as on GET
    found.pop("status")
    return _render(site, view, 200 if result.ok else 422, pasted=result, pasted_text=text[:6000],
                   **found)  # fmt: skip


async def verify_log(site: Site, request: Request, view: View) -> Response:
    await read_form(request, view, site.services.secret)
    service = _service(site, view)

    def run() -> Any:
        service.sequence_all()
        return service.verify()

    report = await site.call(run)
    lang = "en" if view.lang == "en" else "zh"
    found = await _search(site, request, view)  # the newest entries below, as on GET
    found.pop("status")
    return _render(site, view, report=report, report_text=report.text(lang), **found)
