"""Key journeys in a real headless Chromium (Debian's ``chromium``, driven by Playwright
with ``executable_path``; no browser is downloaded). The app runs under uvicorn on
127.0.0.1 over a SQLite repository with a small demo region; every request the browser
makes is recorded, and anything not for 127.0.0.1 is blocked and fails the test."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import CHROMIUM
from web_world import WebWorld, build_world

from huitong.ingest.message_store import MessageStatus
from huitong.store import open_repository

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's browser with "
        "`apt-get install -y chromium chromium-driver` to run the browser tests",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)"
)
from browser_helpers import chromium, local_tab, serve  # noqa: E402


class Served:
    def __init__(self, world: WebWorld, base: str) -> None:
        self.world = world
        self.base = base


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app under uvicorn on 127.0.0.1 and a free port, in a background thread."""
    repo = open_repository(f"sqlite:///{tmp_path_factory.mktemp('browser') / 'h.db'}")
    world = build_world(repo)
    with serve(world.app) as base:
        yield Served(world, base)
    repo.close()


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[object]:
    with chromium(sync_api) as launched:
        yield launched


@pytest.fixture
def page(browser, served: Served, request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh Chinese context limited to 127.0.0.1; the reprocess confirmation is accepted."""
    with local_tab(browser, request, tmp_path, width=1024, height=768, accept_dialogs=True) as tab:
        yield tab


def _search(page, served: Served, text: str) -> None:
    page.goto(f"{served.base}/app/clinician")
    page.fill("#q", text)
    page.press("#q", "Enter")
    page.wait_for_selector("#results-title")


def _overview_checks(page, served: Served) -> None:
    patient = served.world.patient
    assert page.inner_text("h1") == patient.name
    points = page.locator("svg#chart-bp circle.pt")
    assert points.count() >= 2
    assert page.locator("svg#chart-bp circle.pt.hollow").count() == 2 * patient.home_bp
    count = int(page.get_attribute("#institution-count", "data-count"))
    assert count >= 2
    assert f"{count} 家机构" in page.inner_text("#institution-count")


def test_clinician_finds_a_patient_by_resident_id_and_sees_the_whole_person(page, served):
    patient = served.world.patient
    _search(page, served, patient.resident_id)
    page.click(f"a.result-link[href='/app/patients/{patient.id}']")
    page.wait_for_url(f"**/app/patients/{patient.id}")
    _overview_checks(page, served)
    # the chart is really drawn: its points have a size on screen
    box = page.locator("svg#chart-bp").bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100


def test_clinician_finds_a_patient_by_name(page, served):
    patient = served.world.patient
    _search(page, served, patient.name)
    names = page.locator(".result-name").all_inner_texts()
    assert names and all(n.startswith(patient.name) for n in names)
    page.click(f"a.result-link[href='/app/patients/{patient.id}']")
    _overview_checks(page, served)


def test_language_switch_changes_the_page_text(page, served):
    patient = served.world.patient
    page.goto(f"{served.base}/app/patients/{patient.id}")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert "血压" in page.inner_text("#vitals-title")
    page.click("a.lang-switch")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.url.endswith("lang=en")
    assert page.inner_text("#vitals-title") == "Blood pressure and glucose"
    assert "This record combines data from" in page.inner_text("#institution-count")
    assert page.inner_text("h1") == patient.name  # data stays as recorded
    page.goto(f"{served.base}/app/clinician")  # the choice is remembered
    assert page.inner_text("h1") == "Find a patient"
    page.click("a.lang-switch")
    page.wait_for_function("document.documentElement.lang === 'zh-CN'")
    assert page.inner_text("h1") == "查找患者"


def _tab_to(page, predicate: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {predicate}; }})()"):
            return
    raise AssertionError(f"Tab never reached {predicate}")


def test_keyboard_only_search_and_open(page, served):
    patient = served.world.patient
    page.goto(f"{served.base}/app")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    _tab_to(page, "el.getAttribute('href') === '/app/clinician'")
    page.keyboard.press("Enter")
    page.wait_for_url("**/app/clinician")
    page.evaluate("document.activeElement.blur()")
    _tab_to(page, "el.id === 'q'")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # a visible focus indicator
    page.keyboard.type(patient.resident_id)
    page.keyboard.press("Enter")
    page.wait_for_selector("#results-title")
    _tab_to(page, f"el.getAttribute('href') === '/app/patients/{patient.id}'")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/app/patients/{patient.id}")
    _overview_checks(page, served)


def test_operator_reprocesses_a_failed_message(page, served):
    world = served.world
    page.goto(f"{served.base}/app/operator/channels")
    assert "县医院 HIS" in page.inner_text("#channel-table")
    assert page.locator("svg#chart-per-hour polyline").count() >= 1
    page.click(f"a[href='/app/operator/messages/{world.failed_message}']")
    page.wait_for_url(f"**/app/operator/messages/{world.failed_message}")
    assert page.inner_text("#raw-message").startswith("MSH|^~\\&|HIS|LATELAB")
    assert "错误" in page.inner_text("#message-status")
    page.click("#reprocess")
    page.wait_for_selector("#reprocess-result")
    assert "已处理" in page.inner_text("#reprocess-result")
    assert "已处理" in page.inner_text("#message-status")
    stored = world.services.ingest.store.get(world.failed_message)
    assert stored.status is MessageStatus.PROCESSED
    produced = page.locator("#produced-list a.produced-link")
    assert produced.count() == len(stored.produced) >= 2
    first = produced.first.get_attribute("href")
    produced.first.click()
    page.wait_for_url(f"**{first}")
    assert "resourceType" in page.inner_text("pre.json")


def test_operator_opens_a_messages_raw_and_produced_resources(page, served):
    world = served.world
    page.goto(f"{served.base}/app/operator/messages")
    page.select_option("#f-status", "processed")  # applies on change (progressive JS)
    page.wait_for_url(re.compile(r".*status=processed.*"))
    page.click(f"a[href='/app/operator/messages/{world.processed_message}']")
    assert "PID|1||MRN0001" in page.inner_text("#raw-message")
    page.click("#produced-list details summary >> nth=0")
    assert '"resourceType"' in page.inner_text("#produced-list details pre")
    page.click("#produced-list a:has-text('患者概览')")
    assert page.inner_text("h1") == "王小明"


def test_works_offline_with_local_styles_and_scripts(page, served):
    """Only 127.0.0.1 is reachable (the fixture aborts the rest and fails on any attempt):
    the page is still fully styled and its scripts run."""
    page.goto(f"{served.base}/app/patients/{served.world.patient.id}")
    header = page.evaluate("getComputedStyle(document.querySelector('.site-header'))"
                           ".backgroundColor")
    assert header == "rgb(8, 63, 120)"  # from app.css
    assert page.is_visible("#lab-filter")  # revealed by app.js
    rows = page.locator("#lab-table tbody tr")
    total = rows.count()
    first_name = page.inner_text("#lab-table tbody tr >> nth=0 >> th").split(" ")[0]
    page.fill("#lab-filter", first_name)
    visible = page.locator("#lab-table tbody tr:not([hidden])").count()
    assert 1 <= visible < total
    before = page.url
    page.click("a.text-toggle")  # large text without a reload
    assert page.evaluate("document.documentElement.classList.contains('text-large')")
    assert page.url == before
    assert page.get_attribute("a.text-toggle", "aria-pressed") == "true"


def test_tablet_width_has_no_horizontal_scroll(browser, served):
    context = browser.new_context(viewport={"width": 768, "height": 1024}, locale="zh-CN")
    try:
        tab = context.new_page()
        for url in (f"/app/patients/{served.world.patient.id}", "/app/operator/channels",
                    "/app/clinician"):
            tab.goto(served.base + url)
            overflow = tab.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, url
    finally:
        context.close()


SCREENSHOTS = os.environ.get("HUITONG_WEB_SCREENSHOTS")


@pytest.mark.skipif(not SCREENSHOTS, reason="set HUITONG_WEB_SCREENSHOTS=DIR to capture "
                    "the documentation's screenshots")
def test_capture_screenshots(browser, served):
    """Not a check: writes the pages' screenshots for the docs into $HUITONG_WEB_SCREENSHOTS."""
    target = Path(str(SCREENSHOTS))
    target.mkdir(parents=True, exist_ok=True)
    patient = served.world.patient.id
    shots = [
        ("clinician-overview", f"/app/patients/{patient}", 1280, False),
        ("clinician-vitals", f"/app/patients/{patient}#vitals", 1280, False),
        ("clinician-overview-en", f"/app/patients/{patient}?lang=en", 1280, False),
        ("operator-channels", "/app/operator/channels?lang=zh-CN", 1280, True),
        ("operator-message", f"/app/operator/messages/{served.world.processed_message}",
         1280, True),
        ("tablet-large-text", f"/app/patients/{patient}?text=large", 768, False),
    ]
    for name, url, width, full in shots:
        context = browser.new_context(viewport={"width": width, "height": 900})
        tab = context.new_page()
        tab.goto(served.base + url)
        tab.screenshot(path=str(target / f"{name}.png"), full_page=full)
        context.close()
    assert len(list(target.glob("*.png"))) >= len(shots)
