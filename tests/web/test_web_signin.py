"""The pages with authentication ON, through the real application: sign-in and sign-out,
every page as the signed-in principal (what the API would allow, no more), the reason and
the lawful ways in where a clinician has no access, the identity review queue, data quality
and the system page. Requests go through the ASGI app (no browser); the browser journeys
are in test_web_browser_auth.py."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from auth_world import PASSWORD, AuthWorld, Browser, build_auth_world, signed_in

from huitong.access.accounts import AccountStore
from huitong.access.principal import Principal, Role
from huitong.access.totp import totp_code
from huitong.audit.service import AuditService
from huitong.store import Repository, open_repository
from huitong.web.identity_review import mask_id_number, mask_name, mask_phone
from huitong.web.signin import safe_next


@pytest.fixture(scope="module")
def aw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthWorld]:
    repo = open_repository(f"sqlite:///{tmp_path_factory.mktemp('auth') / 'h.db'}")
    yield build_auth_world(repo)
    repo.close()


@pytest.fixture(scope="module")
def clinician(aw: AuthWorld) -> Iterator[Browser]:
    browser = signed_in(aw.app, aw.users["clinician"])
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def operator(aw: AuthWorld) -> Iterator[Browser]:
    browser = signed_in(aw.app, aw.users["operator"])
    yield browser
    browser.close()


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _by_id(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert found, f"no #{element_id}"
    return found.group(1).strip()


# -- signing in --------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/app/clinician", "/app/patients/x1",
                                 "/app/operator/identity", "/app/operator/system"])
def test_pages_need_sign_in(aw: AuthWorld, url: str) -> None:
    browser = Browser(aw.app)
    try:
        resp = browser.get(url)
        assert resp.status_code == 303
        assert resp.headers["location"].startswith("/app/signin?next=%2Fapp%2F")
        home = browser.get("/app/")
        assert home.status_code == 200 and 'id="signin-link"' in home.text
    finally:
        browser.close()


def test_wrong_password_and_forged_form(aw: AuthWorld) -> None:
    browser = Browser(aw.app)
    try:
        resp = browser.sign_in(aw.users["clinician"], "not the password")
        assert resp.status_code == 401
        assert "用户名或密码错误" in _by_id(resp.text, "signin-error")
        assert "huitong_at" not in resp.headers.get("set-cookie", "")
        en = browser.post("/app/signin?lang=en", data={
            "csrf": browser.csrf(), "username": aw.users["clinician"], "password": "nope"})
        assert "The user name or password is wrong." in en.text
        forged = browser.post("/app/signin", data={
            "csrf": "0" * 64, "username": aw.users["clinician"], "password": PASSWORD})
        assert forged.status_code == 403 and "huitong_at" not in forged.headers.get(
            "set-cookie", "")
    finally:
        browser.close()


def test_session_cookies_are_http_only_lax_and_scoped(aw: AuthWorld) -> None:
    browser = Browser(aw.app)
    try:
        resp = browser.sign_in(aw.users["clinician"], next_url="/app/clinician")
        assert resp.status_code == 303 and resp.headers["location"] == "/app/clinician"
        cookies = [c for c in resp.headers.get_list("set-cookie")
                   if c.startswith(("huitong_at=", "huitong_rt="))]
        assert len(cookies) == 2
        for cookie in cookies:
            lowered = cookie.lower()
            assert "httponly" in lowered and "samesite=lax" in lowered and "path=/app" in lowered
        page = browser.get("/app/clinician")
        assert page.status_code == 200 and "李医生" in _by_id(page.text, "who")
    finally:
        browser.close()


def test_staff_with_totp_sign_in_in_two_steps(aw: AuthWorld) -> None:
    accounts = AccountStore(aw.demo.repo, aw.demo.repo.clock, lambda: "web-user-totp")
    accounts.add("dr.qian", PASSWORD, "clinician", display_name="钱医生",
                 organization_id=aw.care_org)
    secret = accounts.enrol_totp("dr.qian")
    browser = Browser(aw.app)
    try:
        step_one = browser.sign_in("dr.qian", next_url="/app/clinician")
        assert step_one.status_code == 200 and 'name="ticket"' in step_one.text
        assert PASSWORD not in step_one.text  # the password is never sent back
        ticket = re.search(r'name="ticket" value="([^"]+)"', step_one.text)
        assert ticket
        form = {"csrf": browser.csrf(), "step": "totp", "ticket": ticket.group(1),
                "next": "/app/clinician"}
        wrong = browser.post("/app/signin", data={**form, "totp": "000000"})
        assert wrong.status_code == 401 and "动态口令错误" in _by_id(wrong.text, "signin-error")
        code = totp_code(secret, int(time.time()))
        done = browser.post("/app/signin", data={**form, "totp": code})
        assert done.status_code == 303 and done.headers["location"] == "/app/clinician"
        assert "钱医生" in _by_id(browser.get("/app/clinician").text, "who")
    finally:
        browser.close()


def test_a_disabled_account_loses_its_session_at_once(aw: AuthWorld) -> None:
    accounts = AccountStore(aw.demo.repo, aw.demo.repo.clock, lambda: "web-user-gone")
    accounts.add("dr.gone", PASSWORD, "clinician", organization_id=aw.care_org)
    browser = signed_in(aw.app, "dr.gone")
    try:
        assert browser.get("/app/clinician").status_code == 200
        accounts.set_disabled("dr.gone")
        resp = browser.get("/app/clinician")
        assert resp.status_code == 303 and "/app/signin" in resp.headers["location"]
    finally:
        browser.close()


@pytest.mark.parametrize(("target", "expected"), [
    ("/app/patients/p1?x=1", "/app/patients/p1?x=1"),
    ("/app/clinician", "/app/clinician"),
    ("https://evil.example/app", "/app/"),
    ("//evil.example/app", "/app/"),
    ("/app\\..\\evil", "/app/"),
    ("/fhir/Patient", "/app/"),
    ("", "/app/"),
    (None, "/app/"),
])
def test_only_local_pages_after_sign_in(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_sign_out_revokes_the_session(aw: AuthWorld) -> None:
    browser = signed_in(aw.app, aw.users["clinician"])
    try:
        kept = dict(browser.cookies)
        assert browser.get("/app/clinician").status_code == 200
        resp = browser.post("/app/signout", data={"csrf": browser.csrf("/app/clinician")})
        assert resp.status_code == 303 and resp.headers["location"].startswith("/app/signin")
        assert browser.get("/app/clinician").status_code == 303
    finally:
        browser.close()
    # the old cookies, replayed, are worth nothing: their tokens are revoked
    thief = Browser(aw.app)
    try:
        for name in ("huitong_at", "huitong_rt"):
            thief.cookies.set(name, kept[name], domain="127.0.0.1", path="/app")
        assert thief.get("/app/clinician").status_code == 303
    finally:
        thief.close()


def test_an_expired_access_token_is_refreshed(aw: AuthWorld) -> None:
    browser = signed_in(aw.app, aw.users["clinician"])
    try:
        browser.cookies.set("huitong_at", "expired-or-garbage", domain="127.0.0.1",
                            path="/app")
        resp = browser.get("/app/clinician")
        assert resp.status_code == 200
        renewed = [c for c in resp.headers.get_list("set-cookie") if c.startswith("huitong_at=")]
        assert renewed and "expired-or-garbage" not in renewed[0]
    finally:
        browser.close()


# -- clinicians --------------------------------------------------------------------------
def test_clinician_finds_the_patient_across_institutions(aw: AuthWorld,
                                                         clinician: Browser) -> None:
    patient = aw.demo.patient
    found = clinician.get(f"/app/clinician?q={patient.name}")
    assert found.status_code == 200 and f"/app/patients/{patient.id}" in found.text
    overview = clinician.get(f"/app/patients/{patient.id}")
    assert overview.status_code == 200
    count = re.search(r'id="institution-count" data-count="(\d+)"', overview.text)
    assert count and int(count.group(1)) >= 2
    assert "该患者在您的机构登记或就诊过" in _by_id(overview.text, "access-basis")


def test_page_reads_are_in_the_audit_log(aw: AuthWorld, clinician: Browser) -> None:
    """A page that shows a patient's data writes an audit entry like the FHIR API: the
    signed-in clinician, the patients and resources the page read, the access basis."""
    patient = aw.demo.patient
    log = AuditService(aw.demo.repo)
    user = AccountStore(aw.demo.repo, aw.demo.repo.clock, str).require(
        aw.users["clinician"]).id
    before = {e.seq for e in log.entries(patient_ids=[patient.id], actor_user=user)}
    assert clinician.get(f"/app/patients/{patient.id}").status_code == 200
    new = [e for e in log.entries(patient_ids=[patient.id], actor_user=user)
           if e.seq not in before]
    assert len(new) == 1
    entry = new[0].entry
    assert entry.action == "read" and entry.actor.role == "clinician"
    assert f"Patient/{patient.id}" in entry.resources and len(entry.resources) > 10
    assert patient.name not in (entry.query or "")
    searched = clinician.get(f"/app/clinician?q={patient.name}")
    assert searched.status_code == 200
    latest = log.entries(actor_user=user, count=1)[0].entry
    assert latest.action == "search-type" and patient.name not in (latest.query or "")


def test_search_shows_only_patients_the_clinician_may_see(aw: AuthWorld) -> None:
    patient = aw.demo.patient
    outsider = signed_in(aw.app, aw.users["outside"])
    try:
        found = outsider.get(f"/app/clinician?q={patient.name}")
        assert found.status_code == 200
        assert f"/app/patients/{patient.id}" not in found.text
        assert 'id="hidden-matches"' not in found.text  # a name reveals nothing hidden
        # the exact ID number (an ID card at the desk) leads to the ways in, nothing more
        by_id = outsider.get(f"/app/clinician?q={patient.resident_id}")
        assert f'href="/app/patients/{patient.id}" class="hidden-match"' in by_id.text
        assert patient.name not in by_id.text
        assert outsider.get(f"/app/patients/{patient.id}").status_code == 403
    finally:
        outsider.close()


@pytest.mark.parametrize(("lang", "reason", "offers"), [
    ("zh-CN", "该患者未在您的机构登记或就诊", ("输入患者的共享码", "紧急访问（破窗）")),
    ("en", "The patient is not registered or seen at your organization",
     ("Enter the patient's share code", "Emergency access (break the glass)")),
])
def test_without_access_the_page_says_why_and_offers_the_ways_in(
    aw: AuthWorld, lang: str, reason: str, offers: tuple[str, str]
) -> None:
    outsider = signed_in(aw.app, aw.users["outside"])
    try:
        resp = outsider.get(f"/app/patients/{aw.demo.patient.id}?lang={lang}")
        assert resp.status_code == 403
        assert reason in _by_id(resp.text, "access-reason")
        text = _text(resp.text)
        assert all(offer in text for offer in offers)
        assert aw.demo.patient.name not in resp.text  # nothing of the record itself
        user = AccountStore(aw.demo.repo, aw.demo.repo.clock, str).require(
            aw.users["outside"]).id
        refused = AuditService(aw.demo.repo).entries(actor_user=user, count=1)[0].entry
        assert refused.action == "read" and refused.outcome != "success"  # the attempt is logged
        missing = outsider.get("/app/patients/no-such-patient")
        assert missing.status_code == 404
    finally:
        outsider.close()


def test_break_the_glass_opens_the_record_with_a_reason(aw: AuthWorld) -> None:
    pid = aw.demo.patient.id
    outsider = signed_in(aw.app, aw.users["outside"])
    try:
        csrf = outsider.csrf(f"/app/patients/{pid}")
        short = outsider.post(f"/app/patients/{pid}/break-glass",
                              data={"csrf": csrf, "reason": "急"})
        assert short.status_code == 400 and _by_id(short.text, "access-problem")
        no_token = outsider.post(f"/app/patients/{pid}/break-glass",
                                 data={"reason": "患者昏迷送入急诊，需查看既往病史和过敏史"})
        assert no_token.status_code == 403
        opened = outsider.post(f"/app/patients/{pid}/break-glass",
                               data={"csrf": csrf, "reason": "患者昏迷送入急诊，需查看既往病史和过敏史"})
        assert opened.status_code == 303 and opened.headers["location"] == f"/app/patients/{pid}"
        overview = outsider.get(f"/app/patients/{pid}")
        assert overview.status_code == 200
        assert "紧急访问" in _by_id(overview.text, "access-basis")
    finally:
        outsider.close()


def test_a_share_code_opens_the_record(aw: AuthWorld) -> None:
    pid = aw.demo.patient.id
    resident = Principal(role=Role.PATIENT, user_id="resident-1", patient_ids=frozenset({pid}))
    issued = aw.app.state.consent.share_codes.issue(resident, patient_id=pid)
    code = getattr(issued, "code", None) or issued.display
    clinician = signed_in(aw.app, aw.users["outside2"])
    try:
        csrf = clinician.csrf(f"/app/patients/{pid}")
        wrong = clinician.post(f"/app/patients/{pid}/share-code",
                               data={"csrf": csrf, "code": "AAAA-BBBB"})
        assert wrong.status_code == 400 and _by_id(wrong.text, "access-problem")
        used = clinician.post(f"/app/patients/{pid}/share-code", data={"csrf": csrf, "code": code})
        assert used.status_code == 303
        overview = clinician.get(f"/app/patients/{pid}")
        assert overview.status_code == 200
        assert "共享码" in _by_id(overview.text, "access-basis")
    finally:
        clinician.close()


# -- roles -------------------------------------------------------------------------------
@pytest.mark.parametrize(("who", "url", "status", "text"), [
    ("clinician", "/app/operator/channels", 403, "仅平台运维人员可以使用"),
    ("clinician", "/app/operator/identity", 403, "仅平台运维人员可以使用"),
    ("operator", "/app/clinician", 403, "仅临床医生可以使用"),
    ("operator", "/app/patients/x", 403, "仅临床医生可以使用"),
    ("operator", "/app/operator/channels", 200, "接入通道"),
    ("operator", "/app/operator/system", 200, "网页登录"),
    ("clinician", "/app/clinician", 200, "查找患者"),
])
def test_each_role_reaches_its_pages_and_hears_why_not_others(
    aw: AuthWorld, clinician: Browser, operator: Browser, who: str, url: str, status: int,
    text: str,
) -> None:
    browser = clinician if who == "clinician" else operator
    resp = browser.get(url)
    assert resp.status_code == status
    assert text in _text(resp.text)


# -- operators ---------------------------------------------------------------------------
def test_operator_resolves_a_review_pair(aw: AuthWorld, operator: Browser) -> None:
    queue = operator.get("/app/operator/identity")
    assert queue.status_code == 200
    item = re.search(r'id="review-(\d+)"', queue.text)
    assert item, "the look-alike pair should wait for review"
    item_id = item.group(1)
    assert "欧**" in queue.text and "欧阳建国" not in queue.text  # masked
    assert "一致程度" in queue.text and "完全一致" in queue.text  # evidence per field
    csrf = operator.csrf("/app/operator/identity")
    blank = operator.post(f"/app/operator/identity/{item_id}",
                          data={"csrf": csrf, "decision": "link", "reason": " "})
    assert blank.status_code == 400
    done = operator.post(f"/app/operator/identity/{item_id}",
                         data={"csrf": csrf, "decision": "not-same",
                               "reason": "出生地和父母姓名不同"})
    assert done.status_code == 303
    after = operator.get(done.headers["location"])
    assert f"第 {item_id} 对已标记为非同一人" in _text(after.text)
    assert f'id="review-{item_id}"' not in after.text
    rejected = operator.get("/app/operator/identity?status=rejected")
    assert f'id="review-{item_id}"' in rejected.text
    again = operator.post(f"/app/operator/identity/{item_id}",
                          data={"csrf": csrf, "decision": "link", "reason": "重复提交"})
    assert again.status_code == 409


def test_quality_page_shows_scores_and_findings(aw: AuthWorld, operator: Browser) -> None:
    resp = operator.get("/app/operator/quality")
    assert resp.status_code == 200
    assert re.search(r'id="overall-score">\d+\.\d%', resp.text)
    assert 'id="institution-scores"' in resp.text and "<svg" in resp.text
    # Each institution's go-live (its first receipt here: the demo loaded it) beside its score.
    assert re.search(r'class="live-since">\d{4}-\d{2}-\d{2}<', resp.text)
    link = re.search(r'href="(/app/operator/quality/findings\?[^"]+)"', resp.text)
    assert link
    findings = operator.get(link.group(1).replace("&amp;", "&"))
    assert findings.status_code == 200 and 'id="findings-total"' in findings.text
    assert operator.get("/app/operator/quality?month=2026-13").status_code == 400


@pytest.mark.parametrize(("value", "masked"), [
    ("王小明", "王**"), ("Wang Xiaoming", "W*** X***"), ("", ""),
])
def test_names_are_masked(value: str, masked: str) -> None:
    assert mask_name(value) == masked


@pytest.mark.parametrize(("value", "masked"), [
    ("110101199003071234", "110101********1234"), ("1234", "1234"),
])
def test_id_numbers_are_masked(value: str, masked: str) -> None:
    assert mask_id_number(value) == masked


@pytest.mark.parametrize(("value", "masked"), [
    ("13812345678", "138****5678"), ("+86 138-1234-5678", "138****5678"), ("12", "****"),
])
def test_phones_are_masked(value: str, masked: str) -> None:
    assert mask_phone(value) == masked


# -- both engines ------------------------------------------------------------------------
def test_signed_in_pages_on_both_engines(repo: Repository, tmp_path: Path) -> None:
    world = build_auth_world(repo, residents=2)
    clinician = signed_in(world.app, world.users["clinician"])
    outsider = signed_in(world.app, world.users["outside"])
    try:
        pid = world.demo.patient.id
        assert clinician.get(f"/app/patients/{pid}").status_code == 200
        denied = outsider.get(f"/app/patients/{pid}")
        assert denied.status_code == 403 and _by_id(denied.text, "access-reason")
    finally:
        clinician.close()
        outsider.close()


def test_the_record_template_speaks_plainly_for_residents(aw: AuthWorld) -> None:
    """The overview's sections are one template (``_record.html``); the resident portal
    will render it with plain-language headings. Both sets of headings exist in both
    languages for every section the template shows."""
    from huitong.web.i18n import load_catalogue

    template = (Path(__file__).parents[2] / "src/huitong/web/templates/_record.html").read_text()
    keys = set(re.findall(r"\['([a-z', ]+)'\]", template)[0].replace("'", "").split(", "))
    catalogue = load_catalogue()
    for key in keys:
        for prefix in ("patient.section.", "record.section."):
            entry = catalogue.entries[prefix + key]
            assert entry["en"] and entry["zh"]


def test_with_authentication_off_the_pages_stay_an_open_demo(web) -> None:
    signin = web.get("/app/signin")
    assert signin.status_code == 200 and 'id="auth-off"' in signin.text
    assert "未开启身份认证" in signin.text and 'id="signin-link"' not in signin.text
    assert web.get("/app/clinician").status_code == 200
    assert web.get("/app/operator/identity").status_code == 200
    refused = web.post("/app/signin", data={"username": "x", "password": "y"})
    assert refused.status_code in (403, 404)
