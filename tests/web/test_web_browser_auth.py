"""Key journeys with authentication ON in a real headless Chromium (Debian's ``chromium``
driven by Playwright with ``executable_path``; no browser is downloaded): a clinician signs
in and finds a patient seen at several institutions; a clinician without access reads why
and the lawful ways in; an operator resolves an identity review pair; the data-quality page
shows scores; the language switch works while signed in. The app runs under uvicorn on
127.0.0.1; any request for another host is blocked and fails the test.

``HUITONG_WEB_SCREENSHOTS=DIR`` also writes the documentation's screenshots of these pages.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from auth_world import PASSWORD, AuthWorld, build_auth_world
from browser_helpers import CHROMIUM

from huitong.store import open_repository

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: `apt-get install -y chromium` to run browser tests",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
from browser_helpers import chromium, local_tab, serve  # noqa: E402

SCREENSHOTS = os.environ.get("HUITONG_WEB_SCREENSHOTS")


class Served:
    def __init__(self, world: AuthWorld, base: str) -> None:
        self.world = world
        self.base = base


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app under uvicorn on 127.0.0.1 and a free port, in a background thread."""
    repo = open_repository(f"sqlite:///{tmp_path_factory.mktemp('browser-auth') / 'h.db'}")
    world = build_auth_world(repo)
    with serve(world.app) as base:
        yield Served(world, base)
    repo.close()


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[object]:
    with chromium(sync_api) as launched:
        yield launched


@pytest.fixture
def page(browser, served: Served, request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh Chinese context limited to 127.0.0.1 (see browser_helpers.local_tab)."""
    with local_tab(browser, request, tmp_path, width=1280, height=900) as tab:
        yield tab


def _shot(page, name: str, *, full: bool = False) -> None:
    if SCREENSHOTS:
        target = Path(SCREENSHOTS)
        target.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target / f"{name}.png"), full_page=full)


def _sign_in(page, served: Served, username: str, start: str) -> None:
    """Open ``start``, get sent to the sign-in page, sign in, land back on ``start``."""
    page.goto(served.base + start)
    page.wait_for_selector("#username")
    assert "/app/signin" in page.url
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    _shot(page, "signin")
    page.click("#signin-submit")
    page.wait_for_selector("#who")
    assert urlsplit(page.url).path == urlsplit(served.base + start).path


def test_clinician_signs_in_and_sees_the_patient_across_institutions(page, served):
    patient = served.world.demo.patient
    _sign_in(page, served, served.world.users["clinician"], "/app/clinician")
    page.fill("#q", patient.name)
    page.press("#q", "Enter")
    page.wait_for_selector("#results-title")
    page.click(f"a[href='/app/patients/{patient.id}']")
    page.wait_for_selector("#institution-count")
    assert int(page.get_attribute("#institution-count", "data-count") or 0) >= 2
    assert "就诊过" in page.inner_text("#access-basis")
    assert page.inner_text("h1") == patient.name
    _shot(page, "clinician-signed-in-overview")
    # language switch while signed in: the session stays, the text changes
    page.click("a.lang-switch")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert "Why you can see this record" in page.inner_text("#access-basis")
    assert "李医生" in page.inner_text("#who")
    page.click("#signout")
    page.wait_for_selector("#signed-out")
    page.goto(f"{served.base}/app/patients/{patient.id}")
    page.wait_for_selector("#username")  # signed out: back to the sign-in form


def test_clinician_without_access_sees_why_and_the_ways_in(page, served):
    patient = served.world.demo.patient
    _sign_in(page, served, served.world.users["outside"], f"/app/patients/{patient.id}")
    assert "未在您的机构登记或就诊" in page.inner_text("#access-reason")
    assert page.is_visible("#share-code") and page.is_visible("#break-glass")
    assert patient.name not in page.content()
    _shot(page, "clinician-no-access")
    page.fill("#glass-reason", "患者昏迷送入急诊，需查看既往病史和过敏史")
    page.click("#glass-submit")
    page.wait_for_selector("#institution-count")
    assert "紧急访问" in page.inner_text("#access-basis")


def test_operator_resolves_a_review_pair(page, served):
    _sign_in(page, served, served.world.users["operator"], "/app/operator/identity")
    first = page.locator("article.review-item").first
    item_id = (first.get_attribute("id") or "").removeprefix("review-")
    assert item_id.isdigit()
    assert "完全一致" in first.inner_text()
    _shot(page, "operator-identity-review", full=True)
    page.fill(f"#reason-{item_id}", "同一人：身份证复印件核对一致")
    page.click(f"#link-{item_id}")
    page.wait_for_selector("#review-done")
    assert f"第 {item_id} 对已关联" in page.inner_text("#review-done")
    assert page.locator(f"#review-{item_id}").count() == 0
    page.goto(f"{served.base}/app/operator/identity?status=linked")
    assert page.locator(f"#review-{item_id}").count() == 1


def test_quality_page_shows_scores_per_institution(page, served):
    _sign_in(page, served, served.world.users["operator"], "/app/operator/quality")
    assert page.inner_text("#overall-score").endswith("%")
    assert page.locator("#institution-scores tbody tr").count() >= 1
    assert page.locator("svg#chart-quality-trend, figure svg").count() >= 1
    _shot(page, "operator-quality", full=True)
    page.goto(f"{served.base}/app/operator/system?lang=en")
    assert "Sign-in for these pages" in page.inner_text("main")
    _shot(page, "operator-system")
