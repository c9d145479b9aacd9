"""Every page through the real application (httpx over ASGI): content, language, errors,
the reprocess form with its CSRF token, and the frames of features still to come."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from starlette.applications import Starlette
from web_world import (
    DEMO_RESIDENTS,
    DEMO_SEED,
    SyncClient,
    WebWorld,
    build_world,
)

import huitong
from huitong.demo import generate_region
from huitong.fhir.search.parse import parse_search
from huitong.ingest.message_store import MessageStatus
from huitong.web import WebServices, web_routes


class Page(HTMLParser):
    """The parts of a page the tests look at: landmarks, headings, ids, labels, links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(
            a.get(k.rstrip("_")) == v for k, v in attrs.items())]

    def by_id(self, element_id: str) -> dict[str, str] | None:
        return next((a for _, a in self.tags if a.get("id") == element_id), None)

    @property
    def links(self) -> list[str]:
        return [a["href"] for t, a in self.tags if t == "a" and "href" in a]


def page(resp: Any, status: int = 200) -> Page:
    assert resp.status_code == status, resp.text[:2000]
    assert resp.headers["content-type"].startswith("text/html")
    return Page(resp.text)


def _expected_institutions(world: WebWorld) -> set[str]:
    """Organizations that sent data about the demo patient: every Organization reference
    in the resident's bundle except the assigners of identifiers."""
    bundles = generate_region(seed=DEMO_SEED, residents=DEMO_RESIDENTS)
    bundle = next(b for b in bundles[1:] if any(
        e["resource"].get("id") == world.patient.id for e in b["entry"]))
    found: set[str] = set()

    def walk(value: Any, skip: bool) -> None:
        if isinstance(value, dict):
            ref = value.get("reference")
            if isinstance(ref, str) and ref.startswith("Organization/") and not skip:
                found.add(ref)
            for key, inner in value.items():
                walk(inner, skip or key == "assigner")
        elif isinstance(value, list):
            for inner in value:
                walk(inner, skip)

    walk([e["resource"] for e in bundle["entry"]], False)
    return found


# -- frame, accessibility, headers -------------------------------------------------------
PAGES = ["/app", "/app/clinician", "/app/clinician?q=%E9%99%88", "/app/operator/channels",
         "/app/operator/messages", "/app/operator/system", "/app/portal",
         "/app/operator/identity", "/app/operator/quality", "/app/operator/audit"]


@pytest.mark.parametrize("url", PAGES)
def test_every_page_has_landmarks_one_h1_labels_and_a_strict_policy(web, url):
    resp = web.get(url)
    doc = page(resp)
    assert doc.find("html")[0]["lang"] == "zh-CN"
    assert doc.find("a", class_="skip-link")[0]["href"] == "#main"
    assert doc.by_id("main") is not None and doc.find("main")
    assert len(doc.find("h1")) == 1
    assert doc.find("nav")
    for field in [a for t, a in doc.tags if t in ("input", "select") and a.get("type") != "hidden"]:
        assert doc.find("label", for_=field["id"]), f"unlabelled field {field}"
    csp = resp.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.headers["cache-control"] == "no-store"
    for _tag, attrs in doc.tags:  # nothing is loaded from elsewhere
        for key in ("src", "href"):
            assert not attrs.get(key, "").startswith(("http:", "https:", "//")), attrs


def test_static_files_are_served(web):
    css = web.get("/app/static/app.css")
    assert css.status_code == 200 and ":focus-visible" in css.text
    assert "text-large" in css.text and "@media" in css.text
    js = web.get("/app/static/app.js")
    assert js.status_code == 200 and "data-text-toggle" in js.text


def test_language_switch_is_remembered(web):
    zh = page(web.get("/app/clinician"))
    assert "查找患者" in "".join(zh.text)
    en_resp = web.get("/app/clinician?lang=en")
    en = page(en_resp)
    assert en.find("html")[0]["lang"] == "en"
    assert en_resp.headers["content-language"] == "en"
    assert "Find a patient" in "".join(en.text) and "查找患者" not in "".join(en.text)
    assert "huitong_lang=en" in en_resp.headers["set-cookie"]
    # the link back to Chinese keeps the page and its query
    assert web.get("/app/clinician?q=x&lang=en").text.count("?q=x&amp;lang=zh-CN") == 1
    again = page(web.get("/app/clinician"))  # the cookie now decides
    assert again.find("html")[0]["lang"] == "en"
    back = page(web.get("/app/clinician?lang=zh-CN"))
    assert back.find("html")[0]["lang"] == "zh-CN"


def test_large_text_option(web):
    resp = web.get("/app/clinician?text=large")
    doc = page(resp)
    assert doc.find("html")[0].get("class") == "text-large"
    assert doc.find("a", class_="text-toggle")[0]["aria-pressed"] == "true"
    assert "huitong_text=large" in resp.headers["set-cookie"]
    assert page(web.get("/app")).find("html")[0].get("class") == "text-large"
    assert page(web.get("/app?text=normal")).find("html")[0].get("class") is None


# -- clinician: search -----------------------------------------------------------------
def _person(world: WebWorld) -> set[str]:
    """The demo patient's id and those of golden records linking to it (identity service)."""
    query = parse_search("Patient", [("link", f"Patient/{world.patient.id}")])
    return {world.patient.id, *(m.id for m in world.repo.search(query).matches)}


def _result_links(doc: Page) -> list[str]:
    return [a["href"] for a in doc.find("a", class_="result-link")]


@pytest.mark.parametrize("field", ["resident_id", "name", "phone", "phone_digits", "surname"])
def test_search_finds_the_patient(web, world, field):
    p = world.patient
    text = {"resident_id": p.resident_id, "name": p.name, "phone": p.phone,
            "phone_digits": p.phone.replace("+86 ", ""), "surname": p.name[0]}[field]
    doc = page(web.get("/app/clinician", params={"q": text}))
    links = _result_links(doc)
    assert f"/app/patients/{p.id}" in links
    if field != "surname":  # the source record, and its golden record if the MPI made one
        assert set(links) <= {f"/app/patients/{i}" for i in _person(world)}
    names = re.findall(r'class="result-name">([^<]+)<', web.get(
        "/app/clinician", params={"q": text}).text)
    assert {n.strip() for n in names} == ({p.name} if field != "surname" else {
        n.strip() for n in names if n.startswith(p.name[0])})


def test_search_by_source_identifier_and_explicit_kind(web, world):
    mrn = world.repo.read("Patient", world.patient.id).resource["identifier"]
    record_number = next(i for i in mrn if "mrn" in i.get("system", ""))
    doc = page(web.get("/app/clinician", params={"q": record_number["value"],
                                                 "kind": "identifier"}))
    assert _result_links(doc) == [f"/app/patients/{world.patient.id}"]
    qualified = f"{record_number['system']}|{record_number['value']}"
    doc = page(web.get("/app/clinician", params={"q": qualified}))
    assert _result_links(doc) == [f"/app/patients/{world.patient.id}"]


def test_search_without_match_and_with_bad_input(web):
    none = page(web.get("/app/clinician", params={"q": "不存在的人"}))
    assert _result_links(none) == [] and "没有匹配的患者" in "".join(none.text)
    bad_kind = page(web.get("/app/clinician", params={"q": "x", "kind": "dna"}), 400)
    assert "未知的检索方式" in "".join(bad_kind.text)
    bad_phone = page(web.get("/app/clinician", params={"q": "12", "kind": "phone",
                                                       "lang": "en"}), 400)
    assert bad_phone.by_id("q")["aria-invalid"] == "true"
    assert "not a mobile phone number" in "".join(bad_phone.text)
    assert page(web.get("/app/clinician", params={"q": "x" * 500}), 400)


# -- clinician: the overview -----------------------------------------------------------
def test_overview_shows_the_whole_person(web, world):
    p = world.patient
    resp = web.get(f"/app/patients/{p.id}")
    doc = page(resp)
    text = "".join(doc.text)
    assert doc.find("h1") and p.name in text
    assert p.resident_id in text
    count = doc.by_id("institution-count")
    expected = _expected_institutions(world)
    assert int(count["data-count"]) == len(expected) >= 2
    assert f"此档案汇集了 {len(expected)} 家机构的数据" in text
    for section in ("identity", "vitals", "problems", "medications", "allergies", "labs",
                    "timeline", "imaging", "documents", "immunizations"):
        assert doc.by_id(section) is not None, section
        assert f"#{section}" in doc.links
    badges = [a for t, a in doc.tags if t == "span" and a.get("class", "").startswith("badge ")]
    assert len(badges) > len(expected)  # header, sources list, timeline…
    assert "暂无影像检查" in text and "暂无文档" in text  # the demo has neither yet


def test_blood_pressure_chart_has_every_reading_with_home_ones_open(web, world):
    p = world.patient
    resp = web.get(f"/app/patients/{p.id}")
    svg = re.search(r'<svg class="chart" id="chart-bp".*?</svg>', resp.text, re.S)
    assert svg is not None
    points = re.findall(r'<circle class="pt (s\d)( hollow)?"', svg.group(0))
    everything = world.repo.everything(p.id, count=5000)
    panels = [m.resource for m in everything.matches if m.resource_type == "Observation"
              and any(c.get("code") == "85354-9" for c in m.resource["code"]["coding"])]
    home = [o for o in panels if "device" in o]
    assert len(points) == 2 * len(panels)  # systolic and diastolic
    assert sum(1 for _, hollow in points if hollow) == 2 * len(home) == 2 * p.home_bp
    assert 'aria-labelledby="chart-bp-title chart-bp-desc"' in svg.group(0)
    assert "家用设备" in svg.group(0)  # home readings say so in their tooltip


def test_glucose_and_lab_trends(web, world):
    resp = web.get(f"/app/patients/{world.patient.id}?lang=en")
    doc = page(resp)
    assert 'id="chart-glucose"' in resp.text or "No blood-glucose readings." in resp.text
    lab_rows = re.findall(r"<tr><th scope=\"row\">", resp.text)
    assert lab_rows, "the demo patient has laboratory results"
    trends = re.findall(r'<svg class="chart" id="lab-[^"]+"', resp.text)
    assert trends
    assert "Laboratory results" in "".join(doc.text) and "Reference range" in resp.text


def test_overview_of_a_patient_sent_over_hl7(web, world):
    message = world.services.ingest.store.get(world.processed_message)
    patient_ref = next(r for r in message.produced if r.startswith("Patient/"))
    patient_id = patient_ref.split("/")[1]
    doc = page(web.get(f"/app/patients/{patient_id}"))
    text = "".join(doc.text)
    assert "王小明" in text and "110101199003071234" in text
    assert doc.by_id("institution-count")["data-count"] == "1"  # the channel's organization


@pytest.mark.parametrize("url", [
    "/app/patients/does-not-exist", "/app/patients/bad%21id", "/app/patients/" + "x" * 65,
    "/app/resources/Patient/does-not-exist", "/app/resources/NotAType/1",
    "/app/resources/Patient/bad%20id", "/app/operator/messages/999999",
    "/app/operator/messages/abc", "/app/operator/messages/-1", "/app/nowhere",
    "/app/operator/nowhere/deeper",
])
def test_unknown_things_are_bilingual_404_pages(web, url):
    zh = page(web.get(url), 404)
    assert "未找到" in "".join(zh.text) and zh.find("html")[0]["lang"] == "zh-CN"
    en = page(web.get(url + ("&" if "?" in url else "?") + "lang=en"), 404)
    assert "Not found" in "".join(en.text)


def test_resource_page(web, world):
    doc = page(web.get(f"/app/resources/Patient/{world.patient.id}"))
    assert f"/app/patients/{world.patient.id}" in doc.links
    assert f"/fhir/Patient/{world.patient.id}" in doc.links
    assert world.patient.resident_id in "".join(doc.text)


# -- operator console ------------------------------------------------------------------
def test_channels_page(web, world):
    resp = web.get("/app/operator/channels")
    doc = page(resp)
    text = "".join(doc.text)
    assert "县医院 HIS" in text and "Late Lab" in text and "unrouted" in text
    assert "运行中" in text and "无对应通道" in text
    assert "/app/operator/messages?channel=county-his&amp;status=error" in resp.text
    assert 'id="chart-per-hour"' in resp.text
    assert "<polyline" in resp.text  # messages per hour drawn
    for message_id in (world.failed_message, world.rejected_message):
        assert f"/app/operator/messages/{message_id}" in doc.links
    assert "没有通道接收来自 HIS^LATELAB 的消息" in text


@pytest.mark.parametrize(
    ("params", "expected"),
    [({}, "all"), ({"status": "error"}, "errors"), ({"channel": "county-his"}, "county"),
     ({"control_id": "ADT0001"}, "processed"), ({"status": "filtered"}, "none"),
     ({"status": "error", "channel": "unrouted"}, "failed")],
)
def test_message_filters(web, world, params, expected):
    ids = {"all": {world.processed_message, world.failed_message, world.rejected_message},
           "errors": {world.failed_message, world.rejected_message},
           "county": {world.processed_message, world.rejected_message},
           "processed": {world.processed_message}, "none": set(),
           "failed": {world.failed_message}}[expected]
    doc = page(web.get("/app/operator/messages", params=params))
    shown = {int(h.rsplit("/", 1)[1]) for h in doc.links
             if re.fullmatch(r"/app/operator/messages/\d+", h)}
    assert shown == ids
    if not ids:
        assert "没有符合条件的消息" in "".join(doc.text)


def test_message_filter_by_patient(web, world):
    message = world.services.ingest.store.get(world.processed_message)
    patient = next(r for r in message.produced if r.startswith("Patient/")).split("/_history")[0]
    doc = page(web.get("/app/operator/messages", params={"patient": patient}))
    assert f"/app/operator/messages/{world.processed_message}" in doc.links


@pytest.mark.parametrize("query", ["status=nonsense", "offset=-3", "offset=abc",
                                   "offset=99999999999"])
def test_bad_message_filters_are_400(web, query):
    doc = page(web.get(f"/app/operator/messages?{query}"), 400)
    assert "请求无法处理" in "".join(doc.text)


def test_message_detail_shows_raw_beside_what_it_produced(web, world):
    resp = web.get(f"/app/operator/messages/{world.processed_message}")
    doc = page(resp)
    raw = re.search(r'<pre class="raw" id="raw-message".*?</pre>', resp.text, re.S)
    assert raw and "MSH|^~\\&amp;|HIS|COUNTY" in raw.group(0) and "PID|1||MRN0001" in raw.group(0)
    produced = [h for h in doc.links if h.startswith("/app/resources/")]
    assert any(h.startswith("/app/resources/Patient/") for h in produced)
    assert any(h.startswith("/app/resources/Encounter/") for h in produced)
    patient_link = next(h for h in doc.links if h.startswith("/app/patients/"))
    assert web.get(patient_link).status_code == 200
    for link in produced:
        assert web.get(link).status_code == 200
    csrf = doc.find("input", name="csrf")[0]["value"]
    assert re.fullmatch(r"[0-9a-f]{64}", csrf)
    assert '"resourceType": "Patient"' in html.unescape(resp.text)  # FHIR beside raw


def test_message_detail_of_a_failure_lists_its_errors(web, world):
    doc = page(web.get(f"/app/operator/messages/{world.failed_message}?lang=en"))
    text = "".join(doc.text)
    assert "No channel accepts messages from HIS^LATELAB" in text
    assert "This message produced no resources." in text


def test_reprocess_needs_the_sessions_token(fresh_world):
    client = SyncClient(fresh_world.app)
    try:
        url = f"/app/operator/messages/{fresh_world.failed_message}"
        no_session = client.post(url + "/reprocess", data={"csrf": "0" * 64})
        assert page(no_session, 403) and "表单已过期" in no_session.text
        detail = page(client.get(url))  # sets the session cookie
        token = detail.find("input", name="csrf")[0]["value"]
        assert page(client.post(url + "/reprocess", data={"csrf": "f" * 64}), 403)
        assert page(client.post(url + "/reprocess", data={}), 403)
        other = SyncClient(fresh_world.app)  # another browser's session, same token
        try:
            other.get("/app")
            assert other.post(url + "/reprocess", data={"csrf": token}).status_code == 403
        finally:
            other.close()
        store = fresh_world.services.ingest.store
        assert store.get(fresh_world.failed_message).status is MessageStatus.ERROR
        done = client.post(url + "/reprocess", data={"csrf": token})
        assert done.status_code == 303
        assert done.headers["location"] == url + "?reprocessed=1"
        after = page(client.get(done.headers["location"]))
        assert "已重新处理" in "".join(after.text)
        assert store.get(fresh_world.failed_message).status is MessageStatus.PROCESSED
        assert any(h.startswith("/app/resources/Patient/") for h in after.links)
        missing = client.post("/app/operator/messages/424242/reprocess", data={"csrf": token})
        assert page(missing, 404)
        too_big = client.post(url + "/reprocess", data={"csrf": token, "pad": "x" * 10_000})
        assert too_big.status_code == 413
    finally:
        client.close()


def test_system_page(web, world):
    doc = page(web.get("/app/operator/system"))
    text = "".join(doc.text)
    assert "SQLite（嵌入式）" in text and "正常" in text
    assert doc.by_id("version") is not None and huitong.__version__ in text
    rows = re.findall(r"<tr><td>(\d{4})</td><td class=\"mono\">[^<]+</td><td>([^<]+)</td>",
                      web.get("/app/operator/system").text)
    assert rows and all(state == "已应用" for _, state in rows)
    assert "集成引擎" in text and "尚未启用" in text  # identity etc. not yet
    assert "/app/operator/system?counts=1" in doc.links
    counted = web.get("/app/operator/system?counts=1").text
    patients = world.repo.counts_by_type()["Patient"]
    assert f"<tr><td>Patient</td><td>{patients}</td></tr>" in counted


@pytest.mark.parametrize(("url", "zh", "en"), [
    ("/app/portal", "居民服务门户", "Patient portal"),
    ("/app/operator/audit", "审计", "Audit"),
])
def test_pages_for_a_signed_in_person_say_so_in_the_demo(web, url, zh, en):
    # the portal and the audit pages act for a signed-in resident / auditor: with
    # authentication off they say so plainly (test_web_portal.py has them signed in)
    doc = page(web.get(url))
    text = "".join(doc.text)
    assert zh in text and "需要登录" in text
    assert not doc.find("table")  # no made-up data
    en_doc = page(web.get(url + "?lang=en"))
    assert en in "".join(en_doc.text) and "Sign in needed" in "".join(en_doc.text)
    web.get(url + "?lang=zh-CN")


def test_pages_without_an_ingest_service(world):
    # The pages alone, as a deployment without the integration engine would mount them.
    app = Starlette(routes=web_routes(WebServices(repo=world.repo, identity=object())))
    client = SyncClient(app)
    try:
        for url in ("/app/operator/channels", "/app/operator/messages",
                    f"/app/operator/messages/{world.processed_message}"):
            doc = page(client.get(url))
            assert "本服务器未运行集成引擎" in "".join(doc.text)
        for url in ("/app/operator/quality", "/app/operator/quality/findings"):
            assert "尚未启用" in "".join(page(client.get(url)).text)
        assert page(client.post("/app/operator/messages/1/reprocess"), 503)
    finally:
        client.close()


@pytest.mark.parametrize("url", [
    "/app/clinician?q=%00", "/app/clinician?q=%F0%9F%98%80", "/app/clinician?q=<script>",
    "/app/clinician?q=a%7Cb%7Cc", "/app/clinician?q=%5C", "/app/clinician?kind=",
    "/app/clinician?q=1&q=2", "/app/operator/messages?control_id=%00",
    "/app/operator/messages?patient=Patient/../../x", "/app/operator/messages?channel=' OR 1=1",
    "/app/patients/%2e%2e", "/app/resources/Patient/%00", "/app/operator/messages/1e3",
    "/app?lang=%00&text=%00", "/app/static/nope.css",
])
def test_odd_input_never_breaks_a_page(web, url):
    resp = web.get(url)
    assert resp.status_code < 500, resp.text[:500]
    assert "<script>" not in resp.text.split("</head>", 1)[-1]


def test_pages_on_both_engines(repo):
    """The pages over each engine (the message store's SQL differs in places)."""
    world = build_world(repo, residents=2)
    client = SyncClient(world.app)
    try:
        overview = page(client.get(f"/app/patients/{world.patient.id}"))
        assert int(overview.by_id("institution-count")["data-count"]) >= 2
        channels = page(client.get("/app/operator/channels"))
        assert "县医院 HIS" in "".join(channels.text)
        detail = page(client.get(f"/app/operator/messages/{world.processed_message}"))
        assert detail.find("input", name="csrf")
        system = page(client.get("/app/operator/system"))
        assert repo.dialect in ("sqlite", "postgresql") and "正常" in "".join(system.text)
    finally:
        client.close()


def test_golden_record_combines_its_sources(web, world):
    """With the identity service in the write pipeline, a golden (master) Patient stands for
    its source records: its overview shows their data and identifiers together, and each
    source record's overview points to it."""
    golden_ids = _person(world) - {world.patient.id}
    if not golden_ids:
        pytest.skip("no identity service in this build: no golden records to show")
    (golden_id,) = golden_ids
    source = page(web.get(f"/app/patients/{world.patient.id}"))
    assert f"/app/patients/{golden_id}" in source.links
    combined = page(web.get(f"/app/patients/{golden_id}"))
    text = "".join(combined.text)
    assert combined.by_id("golden-note") is not None
    assert world.patient.resident_id in text  # the source's identifiers
    assert (combined.by_id("institution-count")["data-count"]
            == source.by_id("institution-count")["data-count"])
    bp = web.get(f"/app/patients/{golden_id}").text
    assert bp.count('<circle class="pt') == web.get(
        f"/app/patients/{world.patient.id}").text.count('<circle class="pt')


@pytest.mark.parametrize("order", ["family-given", "given-family", "traditional"])
def test_search_by_pinyin_and_traditional_characters_through_the_identity_service(
        web, world, order):
    import opencc

    from huitong.mpi.normalize.names import han_pinyin, split_han_name, surname_pinyin

    family, given = split_han_name(world.patient.name)
    text = {"family-given": f"{surname_pinyin(family)} {han_pinyin(given)}",
            "given-family": f"{han_pinyin(given).capitalize()} {surname_pinyin(family).upper()}",
            "traditional": opencc.OpenCC("s2t").convert(world.patient.name)}[order]
    doc = page(web.get("/app/clinician", params={"q": text}))
    assert set(_result_links(doc)) & {f"/app/patients/{i}" for i in _person(world)}
    # a name nobody has finds nobody, in pinyin too
    assert _result_links(page(web.get("/app/clinician", params={"q": "qqq xxxzzz"}))) == []
