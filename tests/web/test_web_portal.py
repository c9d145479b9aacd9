"""The patient portal and the auditor's pages through the real application (ASGI, no
browser), authentication ON: who may use them, every form's validation and CSRF, a consent
granted then revoked (the clinician loses access on the very next request, SQLite and
PostgreSQL), share codes with their QR image, "who accessed my record" with each entry's
proof verified on the server, and the auditor's search, entry, proof check and
verification. The browser journeys are in test_web_browser_portal.py."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator

import orjson
import pytest
from auth_world import PASSWORD, AuthWorld, Browser, build_auth_world, signed_in

from huitong.access.accounts import AccountStore
from huitong.fhir.search.parse import parse_search
from huitong.store import Repository, open_repository


@pytest.fixture(scope="module")
def aw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthWorld]:
    repo = open_repository(f"sqlite:///{tmp_path_factory.mktemp('portal') / 'h.db'}")
    world = build_auth_world(repo)
    _more_clinicians(world)
    yield world
    repo.close()


def _more_clinicians(world: AuthWorld) -> None:
    """Clinicians of the outside organization, one per journey, so journeys that open
    access (a share code, break-glass) do not open it for the others."""
    n = iter(range(1, 100))
    accounts = AccountStore(world.demo.repo, world.demo.repo.clock,
                            lambda: f"portal-user-{next(n)}")
    for name in ("dr.zhou", "dr.wang", "dr.feng"):
        accounts.add(name, PASSWORD, "clinician", display_name=f"{name}医生",
                     organization_id=world.outside_org)


@pytest.fixture(scope="module")
def resident(aw: AuthWorld) -> Iterator[Browser]:
    browser = signed_in(aw.app, aw.users["patient"])
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def auditor(aw: AuthWorld) -> Iterator[Browser]:
    # a clinician's read of the demo patient, so the log has one to find
    clinician = signed_in(aw.app, aw.users["clinician"])
    assert clinician.get(f"/app/patients/{aw.demo.patient.id}").status_code == 200
    clinician.close()
    browser = signed_in(aw.app, aw.users["auditor"])
    yield browser
    browser.close()


CSRF_REFUSED = "表单已过期或并非来自本站"


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _by_id(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:p|div|section|table|ul)>', page, re.S)
    assert found, f"no #{element_id}"
    return _text(found.group(1)).strip()


def _report(page: str) -> str:
    found = re.search(r'<pre class="report">(.*?)</pre>', page, re.S)
    assert found, "no verification report"
    return html.unescape(found.group(1))


def _consents(repo: Repository, pid: str) -> list[dict[str, object]]:
    page = repo.search(parse_search("Consent", [("patient", pid), ("_count", "100")]))
    return [m.resource for m in page.matches]


def _active_grants(page: str) -> list[str]:
    return re.findall(r'id="grant-([^"]+)" data-active="true"', page)


# -- who may use the pages -----------------------------------------------------------------
@pytest.mark.parametrize(("who", "url", "status", "text"), [
    (None, "/app/portal", 303, ""),
    (None, "/app/operator/audit", 303, ""),
    ("clinician", "/app/portal", 403, "仅登录本人档案的居民可以使用"),
    ("clinician", "/app/portal/access", 403, "仅登录本人档案的居民可以使用"),
    ("operator", "/app/portal/consents", 403, "仅登录本人档案的居民可以使用"),
    ("operator", "/app/operator/audit", 403, "仅审计员可以使用"),
    ("clinician", "/app/operator/audit", 403, "仅审计员可以使用"),
    ("patient", "/app/operator/audit", 403, "仅审计员可以使用"),
    ("auditor", "/app/portal", 403, "仅登录本人档案的居民可以使用"),
    ("auditor", "/app/clinician", 403, "仅临床医生可以使用"),
    ("patient", "/app/clinician", 403, "仅临床医生可以使用"),
    ("patient", "/app/portal", 200, "我的健康档案"),
    ("patient", "/app/portal/consents", 200, "授权谁查看我的档案"),
    ("patient", "/app/portal/share", 200, "分享码"),
    ("patient", "/app/portal/access", 200, "谁查看过我的档案"),
    ("auditor", "/app/operator/audit", 200, "审计日志"),
])
def test_each_role_reaches_its_pages(aw: AuthWorld, who: str | None, url: str, status: int,
                                     text: str) -> None:
    browser = Browser(aw.app) if who is None else signed_in(aw.app, aw.users[who])
    try:
        resp = browser.get(url)
        assert resp.status_code == status
        if status == 303:
            assert resp.headers["location"].startswith("/app/signin?next=")
        assert text in _text(resp.text)
    finally:
        browser.close()


def test_my_record_is_the_overview_in_plain_language(aw: AuthWorld, resident: Browser) -> None:
    page = resident.get("/app/portal")
    assert page.status_code == 200
    text = _text(page.text)
    assert aw.demo.patient.name in text
    for heading in ("您的用药", "您的化验结果", "您的就诊经历", "您的血压和血糖"):
        assert heading in text
    count = re.search(r'id="institution-count" data-count="(\d+)"', page.text)
    assert count and int(count.group(1)) >= 2
    assert "<svg" in page.text  # blood-pressure chart drawn by the server
    en = _text(resident.get("/app/portal?lang=en").text)
    assert "Your medicines" in en and "Your visits" in en
    resident.get("/app/portal?lang=zh-CN")
    # the resident may open their own resources, and nobody else's
    assert resident.get(f"/app/resources/Patient/{aw.demo.patient.id}").status_code == 200
    assert resident.get(f"/app/resources/Patient/{aw.review_pair[0].split('/')[1]}"
                        ).status_code == 404


# -- CSRF on every form ----------------------------------------------------------------------
@pytest.mark.parametrize(("who", "url", "fields"), [
    ("patient", "/app/portal/consents", {"who": "any", "scope": "all"}),
    ("patient", "/app/portal/consents/c1/revoke", {}),
    ("patient", "/app/portal/share", {"scope": "all", "valid": "60", "hours": "24"}),
    ("patient", "/app/portal/share/x1/withdraw", {}),
    ("auditor", "/app/operator/audit/check", {"proof": "{}"}),
    ("auditor", "/app/operator/audit/verify", {}),
])
@pytest.mark.parametrize("token", [None, "0" * 64])
def test_every_form_needs_the_sessions_csrf_token(aw: AuthWorld, who: str, url: str,
                                                  fields: dict[str, str],
                                                  token: str | None) -> None:
    browser = signed_in(aw.app, aw.users[who])
    before = len(_consents(aw.demo.repo, aw.demo.patient.id))
    try:
        data = {**fields, **({"csrf": token} if token else {})}
        resp = browser.post(url, data=data)
        assert resp.status_code == 403
        assert CSRF_REFUSED in _text(resp.text)
    finally:
        browser.close()
    assert len(_consents(aw.demo.repo, aw.demo.patient.id)) == before


# -- the consent form's validation -------------------------------------------------------------
@pytest.mark.parametrize(("fields", "problem"), [
    ({}, "请选择授权谁查看"),
    ({"who": "everyone", "scope": "all"}, "请选择授权谁查看"),
    ({"who": "organization", "scope": "all"}, "请从列表中选择一家医疗机构"),
    ({"who": "organization", "organization": "no-such-org", "scope": "all"},
     "请从列表中选择一家医疗机构"),
    ({"who": "any"}, "请选择要分享的内容"),
    ({"who": "any", "scope": "some"}, "请至少勾选一类内容"),
    ({"who": "any", "scope": "some", "category": "genome"}, "所选内容不在可选范围内"),
    ({"who": "any", "scope": "all", "sensitive": "PSY"}, "所选敏感类别不在可选范围内"),
    ({"who": "any", "scope": "all", "start": "2020-13-01"}, "日期格式为年-月-日"),
    ({"who": "any", "scope": "all", "start": "tomorrow"}, "日期格式为年-月-日"),
    ({"who": "any", "scope": "all", "start": "2001-01-01"}, "授权不能从过去的日期开始"),
    ({"who": "any", "scope": "all", "start": "2099-01-02", "end": "2099-01-01"},
     "授权不能从过去的日期开始|结束日期早于开始日期|日期过于遥远"),
])
def test_the_grant_form_refuses_what_it_cannot_use(aw: AuthWorld, resident: Browser,
                                                   fields: dict[str, str], problem: str) -> None:
    before = len(_consents(aw.demo.repo, aw.demo.patient.id))
    csrf = resident.csrf("/app/portal/consents")
    resp = resident.post("/app/portal/consents", data={"csrf": csrf, **fields})
    assert resp.status_code == 400
    assert re.search(problem, _by_id(resp.text, "consent-problem"))
    assert len(_consents(aw.demo.repo, aw.demo.patient.id)) == before
    # what the resident chose is kept in the form
    if fields.get("who") == "organization":
        assert 'id="who-org" value="organization" checked' in resp.text


@pytest.mark.parametrize(("fields", "problem"), [
    ({"valid": "60", "hours": "24"}, "请选择要分享的内容"),
    ({"scope": "some", "valid": "60", "hours": "24"}, "请至少勾选一类内容"),
    ({"scope": "all", "valid": "61", "hours": "24"}, "请从列表中选择分享码有效期"),
    ({"scope": "all", "valid": "-1", "hours": "24"}, "请从列表中选择分享码有效期"),
    ({"scope": "all", "valid": "60", "hours": "10000"}, "请从列表中选择医生可查看的时长"),
    ({"scope": "all", "valid": "60"}, "请从列表中选择医生可查看的时长"),
    ({"scope": "all", "valid": "60", "hours": "24", "sensitive": "everything"},
     "所选敏感类别不在可选范围内"),
])
def test_the_share_form_refuses_what_it_cannot_use(aw: AuthWorld, resident: Browser,
                                                   fields: dict[str, str], problem: str) -> None:
    csrf = resident.csrf("/app/portal/share")
    resp = resident.post("/app/portal/share", data={"csrf": csrf, **fields})
    assert resp.status_code == 400
    assert problem in _by_id(resp.text, "share-problem")
    assert 'id="issued"' not in resp.text


def test_others_consents_and_codes_cannot_be_touched(aw: AuthWorld, resident: Browser) -> None:
    csrf = resident.csrf("/app/portal/consents")
    assert resident.post("/app/portal/consents/no-such-consent/revoke",
                         data={"csrf": csrf}).status_code == 404
    assert resident.post("/app/portal/share/no-such-code/withdraw",
                         data={"csrf": csrf}).status_code == 404
    assert resident.post("/app/portal/consents/bad%20id/revoke",
                         data={"csrf": csrf}).status_code == 404


# -- consent granted, then revoked: the clinician's access follows at once ------------------
def _grant_and_revoke(world: AuthWorld, resident: Browser, clinician: Browser,
                      extra: dict[str, object] | None = None) -> None:
    pid = world.demo.patient.id
    assert clinician.get(f"/app/patients/{pid}").status_code == 403  # no relationship yet
    csrf = resident.csrf("/app/portal/consents")
    granted = resident.post("/app/portal/consents", data={
        "csrf": csrf, "who": "organization", "organization": world.outside_org,
        "scope": "all", **(extra or {})})
    assert granted.status_code == 303, granted.text[:500]
    listed = resident.get(granted.headers["location"])
    assert "授权已保存" in _by_id(listed.text, "consent-done")
    (grant_id,) = _active_grants(listed.text)
    opened = clinician.get(f"/app/patients/{pid}")
    assert opened.status_code == 200 and 'id="institution-count"' in opened.text
    revoked = resident.post(f"/app/portal/consents/{grant_id}/revoke",
                            data={"csrf": resident.csrf("/app/portal/consents")})
    assert revoked.status_code == 303
    after = resident.get(revoked.headers["location"])
    assert "授权已撤回" in _by_id(after.text, "consent-done")
    assert _active_grants(after.text) == []
    assert f'id="grant-{grant_id}" data-active="false"' in after.text
    closed = clinician.get(f"/app/patients/{pid}")  # the very next request
    assert closed.status_code == 403 and 'id="access-reason"' in closed.text
    assert world.demo.patient.name not in closed.text


def test_a_revoked_consent_closes_the_record_at_the_next_request(aw: AuthWorld,
                                                                   resident: Browser) -> None:
    clinician = signed_in(aw.app, "dr.feng")
    try:
        _grant_and_revoke(aw, resident, clinician, {"sensitive": ["mental"],
                                                    "category": ["labs"]})
    finally:
        clinician.close()
    # sensitive categories become their own Consent with labels; both are now inactive
    consents = _consents(aw.demo.repo, aw.demo.patient.id)
    labelled = [c for c in consents if c["provision"].get("securityLabel")]  # type: ignore[index,union-attr]
    assert labelled and all(c["status"] == "inactive" for c in consents)


def test_sensitive_categories_are_off_unless_ticked(aw: AuthWorld, resident: Browser) -> None:
    csrf = resident.csrf("/app/portal/consents")
    page = resident.get("/app/portal/consents").text
    assert not re.search(r'name="sensitive" value="\w+" id="sens-\w+" checked', page)
    resp = resident.post("/app/portal/consents", data={
        "csrf": csrf, "who": "any", "scope": "some", "category": "medications"})
    assert resp.status_code == 303
    new = [c for c in _consents(aw.demo.repo, aw.demo.patient.id) if c["status"] == "active"]
    assert len(new) == 1  # no sensitive Consent beside it
    classes = {c["code"] for c in new[0]["provision"]["class"]}  # type: ignore[index]
    assert {"MedicationRequest", "Patient", "Encounter"} <= classes
    assert "Observation" not in classes
    assert "provision" in new[0] and "actor" not in new[0]["provision"]  # type: ignore[operator]
    (grant_id,) = _active_grants(resident.get("/app/portal/consents").text)
    assert resident.post(f"/app/portal/consents/{grant_id}/revoke",
                         data={"csrf": csrf}).status_code == 303


def test_revoking_works_on_both_engines(repo: Repository) -> None:
    world = build_auth_world(repo, residents=2)
    resident = signed_in(world.app, world.users["patient"])
    clinician = signed_in(world.app, world.users["outside"])
    try:
        _grant_and_revoke(world, resident, clinician)
        access = resident.get("/app/portal/access")
        assert access.status_code == 200 and "✓" in _by_id(access.text, "access-log")
    finally:
        resident.close()
        clinician.close()


# -- share codes ------------------------------------------------------------------------------
def test_a_share_code_is_shown_once_with_its_qr_image(aw: AuthWorld, resident: Browser) -> None:
    pid = aw.demo.patient.id
    csrf = resident.csrf("/app/portal/share")
    issued = resident.post("/app/portal/share", data={
        "csrf": csrf, "scope": "some", "category": ["labs", "medications"], "valid": "30",
        "hours": "4"})
    assert issued.status_code == 201
    code = re.search(r'id="share-code-value" data-code="([A-Z0-9]{4}-[A-Z0-9]{4})"', issued.text)
    assert code
    svg = re.search(r"<svg role=\"img\"[^>]*class=\"qr\"[^>]*>.*?</svg>", issued.text, re.S)
    assert svg and f"<title>分享码 {code.group(1)} 的二维码</title>" in svg.group(0)
    assert "no-store" in issued.headers["cache-control"]
    # the list never shows the code again
    later = resident.get("/app/portal/share").text
    assert code.group(1) not in later and code.group(1).replace("-", "") not in later
    (code_id,) = re.findall(r'id="code-([^"]+)" data-status="unused"', later)
    # a clinician redeems it on the no-access page and sees the record
    clinician = signed_in(aw.app, "dr.zhou")
    try:
        assert clinician.get(f"/app/patients/{pid}").status_code == 403
        used = clinician.post(f"/app/patients/{pid}/share-code", data={
            "csrf": clinician.csrf(f"/app/patients/{pid}"), "code": code.group(1).lower()})
        assert used.status_code == 303
        assert clinician.get(f"/app/patients/{pid}").status_code == 200
        listed = resident.get("/app/portal/share").text
        assert f'id="code-{code_id}" data-status="active"' in listed
        assert "dr.zhou医生" in _text(listed)
        # the resident ends the access: the clinician is out at the next request
        ended = resident.post(f"/app/portal/share/{code_id}/withdraw",
                              data={"csrf": resident.csrf("/app/portal/share")})
        assert ended.status_code == 303
        assert "已失效" in _by_id(resident.get(ended.headers["location"]).text, "share-done")
        assert clinician.get(f"/app/patients/{pid}").status_code == 403
    finally:
        clinician.close()


# -- who accessed my record ------------------------------------------------------------------
def test_the_access_list_shows_each_access_with_a_verified_proof(aw: AuthWorld,
                                                                 resident: Browser) -> None:
    pid = aw.demo.patient.id
    clinician = signed_in(aw.app, aw.users["clinician"])
    try:
        assert clinician.get(f"/app/patients/{pid}").status_code == 200
    finally:
        clinician.close()
    page = resident.get("/app/portal/access")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="access-row[^"]*" data-seq="(\d+)" data-basis="([^"]+)" '
                      r'data-role="([^"]+)">(.*?)</tr>', page.text, re.S)
    mine = [r for r in rows if "李医生" in r[3]]
    assert mine, _text(page.text)[:800]
    _seq, basis, role, cells = mine[0]
    assert role == "clinician" and basis == "role"
    assert "✓" in cells and "proof-ok" in cells
    # the precise ground the audit entry names for this resident: seen at the organization
    assert "您在其所在机构登记或就诊过" in _text(cells)
    # the resident's own visits are left out unless asked for
    assert all(r[2] != "patient" for r in rows)
    assert 'data-role="patient"' in resident.get("/app/portal/access?mine=1").text
    # the proof JSON verifies on its own (RFC 9162 inclusion, leaf = SHA-256(0x00 || bytes))
    index = re.search(r'href="/app/portal/access/(\d+)/proof"', cells)
    assert index
    proof = resident.get(f"/app/portal/access/{index.group(1)}/proof")
    assert proof.status_code == 200 and proof.headers["content-type"].startswith(
        "application/json")
    doc = proof.json()
    assert doc["verified"] is True and doc["index"] == int(index.group(1))
    assert doc["entry"]["patients"] == [pid] and "user" not in doc["entry"]["actor"]
    assert "BEGIN PUBLIC KEY" in doc["publicKey"] and doc["checkpoint"].startswith("huitong")
    from huitong.audit.hashing import leaf_hash
    from huitong.audit.proofs import verify_inclusion

    leaf = leaf_hash(base64.b64decode(doc["bytes"]))
    assert base64.b64encode(leaf).decode() == doc["leafHash"]
    assert verify_inclusion(leaf, doc["index"], doc["size"],
                            [base64.b64decode(h) for h in doc["inclusionProof"]],
                            base64.b64decode(doc["root"]))


def test_proofs_of_other_peoples_entries_are_not_found(aw: AuthWorld, resident: Browser,
                                                       auditor: Browser) -> None:
    # an operator's sign-in is about nobody's record: the resident may not see it
    search = auditor.get("/app/operator/audit?action=login")
    index = re.search(r'href="/app/operator/audit/entries/(\d+)"', search.text)
    assert index
    assert resident.get(f"/app/portal/access/{index.group(1)}/proof").status_code == 404
    assert resident.get("/app/portal/access/999999999/proof").status_code == 404
    assert resident.get("/app/portal/access/x/proof").status_code == 404


def test_break_glass_is_highlighted_with_its_reason(aw: AuthWorld, resident: Browser) -> None:
    pid = aw.demo.patient.id
    clinician = signed_in(aw.app, "dr.wang")
    reason = "患者昏迷送入急诊，需查看既往病史"
    try:
        opened = clinician.post(f"/app/patients/{pid}/break-glass", data={
            "csrf": clinician.csrf(f"/app/patients/{pid}"), "reason": reason})
        assert opened.status_code == 303
        assert clinician.get(f"/app/patients/{pid}").status_code == 200
    finally:
        clinician.close()
    page = resident.get("/app/portal/access").text
    assert reason in _by_id(page, "glass-sessions") and "dr.wang医生" in _by_id(page,
                                                                              "glass-sessions")
    glass_rows = re.findall(r'<tr class="access-row glass-row[^"]*"[^>]*>(.*?)</tr>', page, re.S)
    assert glass_rows and any(reason in r and "紧急访问" in r and "急诊救治" in r
                              for r in glass_rows)


# -- the auditor ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "status", "expect"), [
    ("?action=login", 200, "login"),
    ("?action=read", 200, "read"),
    ("?action=unknown-thing", 400, "未知的操作"),
    ("?since=2026-99-01", 400, "日期格式为年-月-日"),
    ("?since=2026-05-02&until=2026-05-01", 400, "结束日期早于开始日期"),
    ("?patient=bad%20id", 400, "ID 只能包含"),
    ("?since=2000-01-01&until=2000-01-02", 200, ""),
])
def test_the_auditor_searches_the_log(aw: AuthWorld, auditor: Browser, query: str, status: int,
                                      expect: str) -> None:
    resp = auditor.get(f"/app/operator/audit{query}")
    assert resp.status_code == status
    if status == 400:
        assert expect in _by_id(resp.text, "audit-problem")
        return
    actions = re.findall(r'<tr class="access-row[^"]*" data-action="([^"]+)"', resp.text)
    if expect:
        assert actions and set(actions) == {expect}
        assert "✓" in resp.text
    else:
        assert actions == [] and 'id="no-entries"' in resp.text


def test_the_auditor_searches_by_patient_and_by_actor(aw: AuthWorld, auditor: Browser) -> None:
    pid = aw.demo.patient.id
    by_patient = auditor.get(f"/app/operator/audit?patient=Patient/{pid}&action=read").text
    cells = re.findall(r'<td class="mono small">([^<]*)</td>', by_patient)
    assert cells and all(pid in c for c in cells)
    user = aw.demo.repo.query("SELECT id FROM auth_users WHERE username = ?",
                              (aw.users["clinician"],))[0][0]
    by_user = auditor.get(f"/app/operator/audit?user={user}").text
    assert "李医生" in _text(by_user) and "钱审计" not in _by_id(by_user, "audit-entries")


def test_the_auditor_opens_an_entry_and_checks_proofs(aw: AuthWorld, auditor: Browser) -> None:
    found = auditor.get("/app/operator/audit?action=login").text
    index = re.search(r'href="/app/operator/audit/entries/(\d+)"', found)
    assert index
    entry = auditor.get(f"/app/operator/audit/entries/{index.group(1)}")
    assert entry.status_code == 200
    assert 'data-ok="true"' in entry.text and "已验证" in _by_id(entry.text, "entry-verdict")
    event = re.search(r'<pre class="json" id="audit-event">(.*?)</pre>', entry.text, re.S)
    assert event and orjson.loads(html.unescape(event.group(1)))["resourceType"] == "AuditEvent"
    proof = re.search(r'<pre class="json" id="proof-json">(.*?)</pre>', entry.text, re.S)
    assert proof
    doc = orjson.loads(html.unescape(proof.group(1)))
    csrf = auditor.csrf("/app/operator/audit")
    good = auditor.post("/app/operator/audit/check", data={"csrf": csrf,
                                                          "proof": orjson.dumps(doc).decode()})
    assert good.status_code == 200 and "✓" in _by_id(good.text, "check-result")
    tampered = dict(doc, bytes=base64.b64encode(b"edited").decode())
    bad = auditor.post("/app/operator/audit/check", data={
        "csrf": csrf, "proof": orjson.dumps(tampered).decode()})
    assert bad.status_code == 422 and "✗" in _by_id(bad.text, "check-result")
    for junk in ("not json", "[1]", '{"index": 1}', '{"index": 0, "size": 1}'):
        refused = auditor.post("/app/operator/audit/check", data={"csrf": csrf, "proof": junk})
        assert refused.status_code == 422 and 'data-ok="false"' in refused.text
    empty = auditor.post("/app/operator/audit/check", data={"csrf": csrf, "proof": " "})
    assert empty.status_code == 400
    assert auditor.get("/app/operator/audit/entries/99999999").status_code == 404


def test_the_auditor_runs_a_verification(aw: AuthWorld, auditor: Browser) -> None:
    resp = auditor.post("/app/operator/audit/verify",
                        data={"csrf": auditor.csrf("/app/operator/audit")})
    assert resp.status_code == 200
    # the console shows an auditor the audit pages only
    assert 'href="/app/operator/channels"' not in resp.text
    assert 'href="/app/operator/audit" aria-current="page"' in resp.text
    assert re.search(r'id="audit-entries"', resp.text)  # the newest entries, as on GET
    assert 'id="verify-report" data-ok="true"' in resp.text
    assert "审计日志验证通过" in _report(resp.text) and "个已签名检查点" in _report(resp.text)
    en = auditor.post("/app/operator/audit/verify?lang=en",
                      data={"csrf": auditor.csrf("/app/operator/audit")})
    assert "Audit log verified" in _report(en.text)
    auditor.get("/app/operator/audit?lang=zh-CN")
    # reading the log is itself audited
    reads = aw.demo.repo.query("SELECT COUNT(*) FROM audit_entries WHERE action = ?",
                               ("audit-read",))[0][0]
    assert int(reads) >= 1


# -- with authentication off (the demo) -------------------------------------------------------
@pytest.mark.parametrize(("url", "zh", "en"), [
    ("/app/portal", "居民服务门户", "Patient portal"),
    ("/app/portal/access", "居民服务门户", "Patient portal"),
    ("/app/operator/audit", "审计", "Audit"),
])
def test_with_authentication_off_the_portal_says_it_needs_sign_in(web, url, zh, en) -> None:
    resp = web.get(url)
    assert resp.status_code == 200
    text = _text(resp.text)
    assert zh in text and "需要登录" in text and "HUITONG_AUTH=on" in text
    assert "<table" not in resp.text  # nothing made up
    assert "Sign in needed" in _text(web.get(url + "?lang=en").text) and en
    web.get(url + "?lang=zh-CN")
