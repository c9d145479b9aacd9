"""Data quality on the write path, through the real app on SQLite and PostgreSQL: rejections
refuse the whole write, warnings are kept as findings, operators reconfigure rules live."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from quality_service_helpers import NOW, Client, Clock, patient, quality_app, systolic

from huitong.fhir.search.parse import parse_search
from huitong.mpi.resident_id import make_resident_id
from huitong.quality.service import QualityService
from huitong.quality.store import count_rows
from huitong.store import Repository

RID = "urn:oid:2.16.156.10011.1.3"


@pytest.fixture
def app(repo: Repository) -> Iterator[tuple[Client, QualityService]]:
    client, service = quality_app(repo)
    yield client, service
    client.close()


def _count(repo: Repository, rtype: str) -> int:
    return int(repo.search(parse_search(rtype, [("_summary", "count")])).total or 0)


def _findings(client: Client, **params: str) -> list[dict]:
    resp = client.get("/api/quality/findings", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["findings"]


def test_reject_rule_refuses_post_with_422_and_writes_nothing(repo, app):
    client, _ = app
    assert client.put("/fhir/Patient/p1", json=patient()).status_code == 201
    before = client.get("/api/quality/scores").json()["overall"]
    resp = client.post("/fhir/Observation", json=systolic(120, effectiveDateTime="1960-01-01"))
    assert resp.status_code == 422, resp.text
    outcome = resp.json()
    assert outcome["resourceType"] == "OperationOutcome"
    errors = [i for i in outcome["issue"] if i["severity"] == "error"]
    assert errors[0]["code"] == "business-rule"
    text = errors[0]["diagnostics"]
    assert "[observation.effective-not-before-birth]" in text and "出生日期" in text
    assert _count(repo, "Observation") == 0
    assert _findings(client, resource="Observation") == []
    # the refused write added no checks to the counters either
    assert client.get("/api/quality/scores").json()["overall"] == before


def test_warn_rule_is_accepted_and_recorded_with_resource_and_source(repo, app):
    client, _ = app
    client.put("/fhir/Patient/p1", json=patient())
    resp = client.post("/fhir/Observation", json=systolic(
        400, meta={"source": "urn:huitong:channel:hosp-a#msg-17"}))
    assert resp.status_code == 201, resp.text
    oid = resp.json()["id"]
    found = _findings(client, rule="observation.systolic-in-range")
    assert len(found) == 1
    f = found[0]
    assert f["resource"] == f"Observation/{oid}" and f["version"] == 1
    assert f["severity"] == "warn" and f["category"] == "plausibility"
    assert f["organization"] == "Organization/hosp-a"  # the subject Patient's institution
    assert f["month"] == "2024-05" and f["createdAt"] == NOW
    assert f["source"] == "urn:huitong:channel:hosp-a#msg-17"
    assert "400" in f["message"]["en"] and "收缩压" in f["message"]["zh"]
    # filters narrow; a finding of another institution or month is not returned
    assert _findings(client, org="Organization/hosp-b") == []
    assert _findings(client, month="2024-04") == []
    assert len(_findings(client, severity="warn", org="Organization/hosp-a")) == 1
    bad = client.get("/api/quality/findings", params={"severity": "fatal"})
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"


def test_transaction_bundle_with_one_rejected_entry_rolls_back_entirely(repo, app):
    client, _ = app
    ref = "urn:uuid:0b7d6a0e-0000-4000-8000-000000000001"
    new_patient = patient("px")
    del new_patient["id"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": ref, "resource": new_patient,
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": systolic(118, subject=ref),
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": systolic(118, subject=ref, effectiveDateTime="1950-01-01"),
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    resp = client.post("/fhir", json=bundle)
    assert resp.status_code == 422, resp.text
    assert _count(repo, "Patient") == 0 and _count(repo, "Observation") == 0
    assert client.get("/api/quality/scores").json()["overall"]["applicable"] == 0
    bundle["entry"].pop()
    assert client.post("/fhir", json=bundle).status_code == 200
    assert _count(repo, "Observation") == 1


def test_disabling_a_rule_takes_effect_without_restart(repo, app):
    client, service = app
    client.put("/fhir/Patient/p1", json=patient())
    late_birth = systolic(120, effectiveDateTime="1960-01-01")
    assert client.post("/fhir/Observation", json=late_birth).status_code == 422
    doc = {"region": "test-city", "rules": {
        "observation.effective-not-before-birth": {"enabled": False},
        "observation.systolic-in-range": {"params": {"high": 180}}}}
    resp = client.put("/api/quality/config", json=doc)
    assert resp.status_code == 200, resp.text
    assert resp.json()["document"] == doc and resp.json()["version"] == 1
    assert client.post("/fhir/Observation", json=late_birth).status_code == 201
    # a tuned parameter applies at once too
    assert client.post("/fhir/Observation", json=systolic(200)).status_code == 201
    assert len(_findings(client, rule="observation.systolic-in-range")) == 1
    listed = {r["id"]: r for r in client.get("/api/quality/rules").json()["rules"]}
    assert listed["observation.effective-not-before-birth"]["enabled"] is False
    assert listed["observation.systolic-in-range"]["params"]["high"] == 180
    assert client.get("/api/quality/rules").json()["region"] == "test-city"
    # another process's service picks the stored document up when it polls
    clock = Clock()
    other = QualityService(repo, clock=clock, reload_every_us=1_000_000)
    assert other.reload().region == "test-city"
    assert service.ruleset.rule("observation.effective-not-before-birth").enabled is False


def test_a_custom_rule_on_a_type_no_rule_checked_before_is_recorded(repo, app):
    # Goal has no shipped rule: its writes were not looked at until the region adds one.
    client, _ = app
    client.put("/fhir/Patient/p1", json=patient())
    goal = {"resourceType": "Goal", "lifecycleStatus": "active",
            "description": {"text": "控制血压"}, "subject": {"reference": "Patient/p1"}}
    assert client.post("/fhir/Goal", json=goal).status_code == 201
    doc = {"custom": {"goal.target-present": {
        "category": "completeness", "severity": "warn", "resource_types": ["Goal"],
        "expect": "target.exists()", "message_en": "A Goal has no target.",
        "message_zh": "目标缺少指标。"}}}
    assert client.put("/api/quality/config", json=doc).status_code == 200
    resp = client.post("/fhir/Goal", json=goal)
    assert resp.status_code == 201, resp.text
    found = _findings(client, rule="goal.target-present")
    assert [f["resource"] for f in found] == [f"Goal/{resp.json()['id']}"]
    counts = [(c.applicable, c.failed) for c in count_rows(repo)
              if c.rule_id == "goal.target-present"]  # fmt: skip
    assert counts == [(1, 1)]


def test_invalid_config_is_refused_with_every_problem(repo, app):
    client, _ = app
    resp = client.put("/api/quality/config", json={
        "rules": {"no.such-rule": {"enabled": False},
                  "observation.systolic-in-range": {"params": {"high": "lots"}}},
        "colour": "blue"})
    assert resp.status_code == 400, resp.text
    issues = resp.json()["issue"]
    where = sorted(i["expression"][0] for i in issues)
    assert where == ["colour", "rules.no.such-rule", "rules.observation.systolic-in-range.params.high"]
    assert all(" / " in i["diagnostics"] for i in issues)  # English / Chinese
    assert client.get("/api/quality/config").json()["version"] is None
    assert client.put("/api/quality/config", content=b"[1, 2]",
                      headers={"content-type": "application/json"}).status_code == 400


def test_same_person_with_different_sexes_at_two_institutions_is_flagged(repo, app):
    client, _ = app
    rid = make_resident_id("110105", date(1970, 3, 5), 13)
    ident = {"system": RID, "value": rid}
    first = patient("a1", "hosp-a")
    first["identifier"].append(ident)
    assert client.put("/fhir/Patient/a1", json=first).status_code == 201
    second = patient("b1", "clinic-b", gender="female")
    second["identifier"].append(ident)
    assert client.put("/fhir/Patient/b1", json=second).status_code == 201
    found = _findings(client, rule="patient.sex-agrees-across-institutions")
    assert [(f["resource"], f["organization"]) for f in found] == [
        ("Patient/b1", "Organization/clinic-b")]
    assert "Organization/hosp-a" in found[0]["message"]["en"]
    # an update of the now-linked record is checked through the identity links at once
    second["telecom"] = [{"system": "phone", "value": "13900000000"}]
    assert client.put("/fhir/Patient/b1", json=second).status_code == 200
    found = _findings(client, rule="patient.sex-agrees-across-institutions")
    assert sorted(f["version"] for f in found) == [1, 2]
    # golden records are the identity service's: never assessed
    golden_refs = [f["resource"] for f in _findings(client, _count="1000")
                   if f["resource"] not in ("Patient/a1", "Patient/b1")]
    assert golden_refs == []


def test_scores_and_report_shapes(repo, app):
    client, _ = app
    client.put("/fhir/Patient/p1", json=patient())
    client.post("/fhir/Observation", json=systolic(120))
    client.post("/fhir/Observation", json=systolic(350))
    scores = client.get("/api/quality/scores", params={"org": "Organization/hosp-a",
                                                       "month": "2024-05"}).json()
    assert scores["organization"] == "Organization/hosp-a" and scores["month"] == "2024-05"
    assert set(scores["categories"]) == {"conformance", "completeness", "plausibility",
                                         "consistency", "timeliness"}
    overall = scores["overall"]
    assert overall["failed"] == 1 and overall["applicable"] > 10
    assert overall["passRate"] == pytest.approx(1 - 1 / overall["applicable"], abs=1e-6)
    assert [m["month"] for m in scores["trend"]] == ["2024-05"]
    assert scores["worstRules"][0]["rule"] == "observation.systolic-in-range"
    assert client.get("/api/quality/scores", params={"month": "May"}).status_code == 400

    html = client.get("/api/quality/report", params={"format": "html"})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "<svg" in html.text or "Organization/hosp-a" in html.text
    csv = client.get("/api/quality/report", params={"format": "csv", "month": "2024-05"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0] == "section,organization,month,category,rule,applicable,failed,pass_rate"
    assert any(line.startswith("rule,,2024-05,plausibility,observation.systolic-in-range")
               for line in lines)
    as_json = client.get("/api/quality/report").json()
    assert as_json["overall"] == client.get("/api/quality/scores").json()["overall"]
    assert client.get("/api/quality/report", params={"format": "pdf"}).status_code == 400


class _Ticking(Clock):
    """A clock that moves one second on every reading."""

    def __call__(self) -> int:
        self.now += 1_000_000
        return self.now


def test_a_transaction_is_received_once_its_findings_share_that_time(repo):
    """The receipt time (findings' createdAt, the arrival delay) is read once per
    transaction: every entry of a bundle arrived together, however many readings of a
    moving clock the write takes; the next transaction is received later."""
    clock = _Ticking(NOW)
    client, _ = quality_app(repo, clock)
    try:
        assert client.put("/fhir/Patient/p1", json=patient()).status_code == 201
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": systolic(400 + i), "request": {"method": "POST", "url": "Observation"}}
            for i in range(3)
        ]}  # fmt: skip
        resp = client.post("/fhir", json=bundle)
        assert resp.status_code == 200, resp.text
        first = _findings(client, rule="observation.systolic-in-range")
        assert len(first) == 3
        assert len({f["createdAt"] for f in first}) == 1
        received = first[0]["createdAt"]
        assert received > NOW
        resp = client.post("/fhir/Observation", json=systolic(410))
        assert resp.status_code == 201, resp.text
        later = _findings(client, rule="observation.systolic-in-range")
        assert len(later) == 4
        assert max(f["createdAt"] for f in later) > received
    finally:
        client.close()


def test_the_late_cross_institution_check_follows_the_rule_as_reconfigured(repo, app):
    # The late check (run when identity links a new source to a golden record) keeps its
    # one-rule set between transactions; a region that makes the rule rejecting must see
    # the next linked write rejected, not judged by the rule as it was.
    client, _ = app
    for n, (hosp, clinic) in enumerate((("a2", "b2"), ("a3", "b3"))):
        if n == 1:
            resp = client.put("/api/quality/config", json={
                "rules": {"patient.sex-agrees-across-institutions": {"severity": "reject"}}})
            assert resp.status_code == 200, resp.text
        rid = make_resident_id("110105", date(1971 + n, 4, 6), 17)
        first = patient(hosp, "hosp-a")
        first["identifier"].append({"system": RID, "value": rid})
        assert client.put(f"/fhir/Patient/{hosp}", json=first).status_code == 201
        second = patient(clinic, "clinic-b", gender="female")
        second["identifier"].append({"system": RID, "value": rid})
        resp = client.put(f"/fhir/Patient/{clinic}", json=second)
        if n == 0:
            assert resp.status_code == 201
        else:
            assert resp.status_code in (400, 422), resp.text
            assert "sex" in resp.text.lower() or "性别" in resp.text
            assert client.get(f"/fhir/Patient/{clinic}").status_code == 404
    found = _findings(client, rule="patient.sex-agrees-across-institutions")
    assert [f["resource"] for f in found] == ["Patient/b2"]


def test_on_postgresql_findings_and_counters_travel_with_the_last_flush(pg_repo):
    """The commit hook's two statements (findings, counters) are deferred on PostgreSQL:
    none goes to the server on its own (a round trip each), both travel with the store's last
    flush, and they still commit with the resources (and are counted as before)."""
    sent_alone: list[str] = []
    deferred: list[str] = []

    def spy(tx) -> None:
        # Registered before the quality service: its commit hook runs first, so the
        # transaction's statements from then on are seen going one way or the other.
        execute, execute_later = tx.execute, tx.execute_later

        def alone(sql, params=()):
            sent_alone.append(sql)
            return execute(sql, params)

        def later(sql, params=()):
            deferred.append(sql)
            return execute_later(sql, params)

        tx.execute, tx.execute_later = alone, later

    pg_repo.add_commit_hook("spy", spy)
    QualityService(pg_repo, clock=Clock()).install()
    with pg_repo.transaction() as tx:
        tx.create(patient())
        # Out of range: one finding of the systolic rule, beside the counters.
        tx.create(systolic(400))
    assert not [sql for sql in sent_alone if "quality_" in sql]
    assert sum("INSERT INTO quality_findings" in sql for sql in deferred) == 1
    assert sum("INSERT INTO quality_count_deltas" in sql for sql in deferred) == 1
    rows = pg_repo.query(
        "SELECT resource, rule_id FROM quality_findings WHERE rule_id = ?",
        ("observation.systolic-in-range",),
    )
    assert len(rows) == 1 and rows[0][0].startswith("Observation/")
    counted = [(c.applicable, c.failed) for c in count_rows(pg_repo)
               if c.rule_id == "observation.systolic-in-range"]  # fmt: skip
    assert counted == [(1, 1)]
