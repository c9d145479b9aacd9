"""The patient portal and the auditor's page in a real headless Chromium (Debian's
``chromium``, Playwright with ``executable_path``), authentication ON: a resident grants a
consent and revokes it, and the clinician's next request shows the no-access state; a
resident makes a share code, a clinician redeems it on the no-access page and sees the
record; the resident's access list shows that clinician's access with a verified proof; an
auditor runs a verification. Requests for any other host fail the test.

``HUITONG_WEB_SCREENSHOTS=DIR`` also writes the documentation's screenshots of these pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_helpers import TIMEOUT_MS
from test_web_browser_auth import (  # the same served app, browser and helpers
    PASSWORD,
    Served,
    _shot,
    browser,
    served,
)

__all__ = ["browser", "served"]  # fixtures, re-exported for this module


def _sign_in(page, served: Served, username: str, start: str) -> None:
    """Open ``start``, sign in on the page it sends to, land back on ``start`` (no
    screenshot of the sign-in form: test_web_browser_auth.py takes that one)."""
    page.goto(served.base + start)
    page.wait_for_selector("#username")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#signin-submit")
    page.wait_for_selector("#who")
    assert urlsplit(page.url).path == urlsplit(served.base + start).path


class Tabs:
    """Browser contexts (one per person), each limited to 127.0.0.1 and watched for
    script errors; closed and checked at the end of the test."""

    def __init__(self, chromium) -> None:
        self.chromium = chromium
        self.contexts: list[object] = []
        self.outside: list[str] = []
        self.errors: list[str] = []

    def open(self, *, width: int = 1280, height: int = 900):
        context = self.chromium.new_context(locale="zh-CN",
                                            viewport={"width": width, "height": height})
        context.set_default_timeout(TIMEOUT_MS)

        def only_local(route) -> None:
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                self.outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_local)
        tab = context.new_page()
        tab.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.contexts.append(context)
        return tab


@pytest.fixture
def tabs(browser, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tabs]:
    opened = Tabs(browser)
    yield opened
    report = getattr(request.node, "rep_call", None)
    for n, context in enumerate(opened.contexts):
        if report is not None and report.failed:
            for k, tab in enumerate(context.pages):
                shot = tmp_path / f"failure-{n}-{k}.png"
                tab.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failure: {shot}")
        context.close()
    assert opened.outside == [], f"requests left 127.0.0.1: {opened.outside}"
    assert opened.errors == [], f"script errors: {opened.errors}"


def test_a_revoked_consent_closes_the_record_on_the_next_request(tabs, served: Served):
    pid = served.world.demo.patient.id
    resident = tabs.open()
    _sign_in(resident, served, served.world.users["patient"], "/app/portal")
    assert "我的健康档案" in resident.inner_text("h1")
    assert int(resident.get_attribute("#institution-count", "data-count") or 0) >= 2
    _shot(resident, "portal-record")
    clinician = tabs.open()
    _sign_in(clinician, served, served.world.users["outside"], f"/app/patients/{pid}")
    clinician.wait_for_selector("#access-reason")  # no relationship: no access yet
    # the resident lets the clinician's organization in, by keyboard and mouse alike
    resident.click("#portal-nav-consents")
    resident.wait_for_selector("#grant-form")
    resident.check("#who-org")
    resident.select_option("#organization", served.world.outside_org)
    resident.check("#scope-all")
    assert not resident.is_checked("#sens-mental")  # sensitive: off unless ticked
    resident.click("#grant-submit")
    resident.wait_for_selector("#consent-done")
    grant = resident.locator("li.grant[data-active='true']")
    assert grant.count() == 1
    _shot(resident, "portal-consents", full=True)
    clinician.reload()
    clinician.wait_for_selector("#institution-count")
    # revoked: the clinician's very next request shows the no-access state
    grant.locator("button.danger").click()
    resident.wait_for_selector("#consent-done")
    assert resident.locator("li.grant[data-active='true']").count() == 0
    clinician.reload()
    clinician.wait_for_selector("#access-reason")
    assert served.world.demo.patient.name not in clinician.content()
    assert clinician.is_visible("#share-code") and clinician.is_visible("#break-glass")


def test_a_share_code_opens_the_record_and_the_access_shows_with_a_verified_proof(
        tabs, served: Served):
    pid = served.world.demo.patient.id
    resident = tabs.open(width=1024, height=1366)  # a tablet, upright
    _sign_in(resident, served, served.world.users["patient"], "/app/portal/share")
    resident.check("#share-scope-all")
    resident.select_option("#valid", "60")
    resident.select_option("#hours", "4")
    resident.click("#share-submit")
    resident.wait_for_selector("#share-code-value")
    code = resident.get_attribute("#share-code-value", "data-code") or ""
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code)
    qr = resident.locator("#issued svg.qr")
    assert qr.count() == 1 and qr.bounding_box()["width"] >= 150  # type: ignore[index]
    _shot(resident, "portal-share-code")
    clinician = tabs.open()
    _sign_in(clinician, served, served.world.users["outside2"], f"/app/patients/{pid}")
    clinician.wait_for_selector("#access-reason")
    clinician.fill("#code", code.lower().replace("-", " "))
    clinician.click("#share-submit")
    clinician.wait_for_selector("#institution-count")
    assert "共享码" in clinician.inner_text("#access-basis")
    # the resident sees who looked, and that the log's proof of it verifies
    resident.click("#portal-nav-access")
    resident.wait_for_selector("#access-log")
    row = resident.locator("tr.access-row", has_text="孙医生").first
    assert row.locator(".proof-ok").count() == 1
    assert "✓" in row.locator("td.proof").inner_text()
    assert "您的分享码" in row.inner_text()
    _shot(resident, "portal-access", full=True)
    with resident.expect_response(re.compile(r"/app/portal/access/\d+/proof$")) as proof:
        row.locator("td.proof a").click()
    assert proof.value.ok and proof.value.json()["verified"] is True
    # the list of codes now shows the code in use; ending it closes the record again
    resident.goto(f"{served.base}/app/portal/share")
    active = resident.locator("tr[data-status='active']")
    assert active.count() == 1
    active.locator("button.danger").click()
    resident.wait_for_selector("#share-done")
    clinician.reload()
    clinician.wait_for_selector("#access-reason")


def test_an_auditor_runs_a_verification(tabs, served: Served):
    auditor = tabs.open()
    _sign_in(auditor, served, served.world.users["auditor"], "/app/operator/audit")
    auditor.select_option("#action", "read")
    auditor.click("#audit-search-submit")
    auditor.wait_for_selector("#audit-entries")
    assert auditor.locator("tr.access-row[data-action='read']").count() >= 1
    # keyboard only: the verification button is reachable and pressable
    auditor.focus("#verify-submit")
    auditor.keyboard.press("Enter")
    auditor.wait_for_selector("#verify-report")
    assert auditor.get_attribute("#verify-report", "data-ok") == "true"
    assert "审计日志验证通过" in auditor.inner_text("#verify-report")
    _shot(auditor, "auditor-verification", full=True)
    auditor.goto(f"{served.base}/app/operator/audit?action=login")
    auditor.locator("#audit-entries a").first.click()
    auditor.wait_for_selector("#entry-verdict")
    assert auditor.get_attribute("#entry-verdict", "data-ok") == "true"

