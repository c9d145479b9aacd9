"""Timeliness and an institution's go-live, through the real app on SQLite and PostgreSQL.

An institution's records from before its feed went live are its history, loaded once at
onboarding: they can only arrive late, so the arrived-in-time rules do not judge them (not
applicable: no finding, not counted). What happens after go-live is judged as before. The
go-live moment is the institution's first receipt, or the date the region document sets;
a rule's ``judge_backfill`` parameter judges the history too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from quality_service_helpers import NOW, Client, Clock, patient, quality_app, systolic

from huitong.quality.config import QualityConfigError
from huitong.quality.service import QualityService
from huitong.store import Repository

DAY = 86_400_000_000
RULE = "observation.arrived-in-time"


@pytest.fixture
def app(repo: Repository) -> Iterator[tuple[Client, QualityService, Clock]]:
    clock = Clock()
    client, service = quality_app(repo, clock)
    yield client, service, clock
    client.close()


def _late(client: Client) -> list[dict]:
    resp = client.get("/api/quality/findings", params={"rule": RULE})
    assert resp.status_code == 200, resp.text
    return resp.json()["findings"]


def _timeliness(client: Client) -> dict:
    scores = client.get("/api/quality/scores", params={"month": "2024-05"}).json()
    return scores["categories"]["timeliness"]


def _obs(effective: str) -> dict:
    return systolic(120, effectiveDateTime=effective, issued=effective)


def _go_live(client: Client) -> dict[str, dict]:
    resp = client.get("/api/quality/go-live")
    assert resp.status_code == 200, resp.text
    return {row["organization"]: row for row in resp.json()["institutions"]}


def test_history_sent_at_go_live_is_not_judged_and_later_delays_are(repo, app):
    client, _, clock = app
    # The hospital's first data (its patient) arrives now: that is its go-live.
    assert client.put("/fhir/Patient/p1", json=patient()).status_code == 201
    live = _go_live(client)["Organization/hosp-a"]
    assert live["liveSince"] == NOW and live["setBy"] == "first-receipt"
    # Two years of history arrive the same day: not judged, not counted.
    assert client.post("/fhir/Observation", json=_obs("2022-05-14T09:00:00+08:00")
                       ).status_code == 201  # fmt: skip
    assert _late(client) == []
    assert _timeliness(client)["applicable"] == 0
    # Sixty days later a result taken 45 days ago (after go-live) arrives: late.
    clock.now = NOW + 60 * DAY
    assert client.post("/fhir/Observation", json=_obs("2024-05-30T09:00:00+08:00")
                       ).status_code == 201  # fmt: skip
    late = _late(client)
    assert len(late) == 1 and late[0]["organization"] == "Organization/hosp-a"
    assert "45" in late[0]["message"]["en"]
    # And a result taken after go-live that arrives within the allowed 30 days passes.
    assert client.post("/fhir/Observation", json=_obs("2024-07-10T09:00:00+08:00")
                       ).status_code == 201  # fmt: skip
    assert len(_late(client)) == 1
    # History is still history later on: a 2023 result sent now is not judged either.
    assert client.post("/fhir/Observation", json=_obs("2023-01-01T09:00:00+08:00")
                       ).status_code == 201  # fmt: skip
    assert len(_late(client)) == 1
    # The first receipt does not move when more data arrives.
    assert _go_live(client)["Organization/hosp-a"]["liveSince"] == NOW


def test_a_new_service_process_reads_the_stored_go_live(repo, app):
    client, _, clock = app
    client.put("/fhir/Patient/p1", json=patient())
    clock.now = NOW + 60 * DAY
    # Another server process (a restart, a second worker) knows nothing in memory.
    other, _ = quality_app(repo, clock)
    try:
        assert other.post("/fhir/Observation", json=_obs("2024-05-30T09:00:00+08:00")
                          ).status_code == 201  # fmt: skip
        assert len(_late(other)) == 1  # judged against the stored go-live, not "now"
    finally:
        other.close()


def test_judge_backfill_judges_the_history_too(repo, app):
    client, service, _ = app
    service.set_config({"rules": {RULE: {"params": {"judge_backfill": True}}}}, by="test")
    client.put("/fhir/Patient/p1", json=patient())
    assert client.post("/fhir/Observation", json=_obs("2022-05-14T09:00:00+08:00")
                       ).status_code == 201  # fmt: skip
    late = _late(client)
    assert len(late) == 1 and "732" in late[0]["message"]["en"]
    assert _timeliness(client)["failed"] == 1


def test_the_region_document_sets_an_institution_go_live(repo, app):
    client, service, _ = app
    service.set_config({"institutions": {"Organization/hosp-a": {"live_since": "2020-01-01"}}},
                       by="test")  # fmt: skip
    live = _go_live(client)["Organization/hosp-a"]
    assert live["setBy"] == "config" and live["liveSinceText"].startswith("2020-01-01")
    client.put("/fhir/Patient/p1", json=patient())
    # Live since 2020: a 2022 result arriving in 2024 is late, a 2019 one is history.
    client.post("/fhir/Observation", json=_obs("2022-05-14T09:00:00+08:00"))
    client.post("/fhir/Observation", json=_obs("2019-05-14T09:00:00+08:00"))
    late = _late(client)
    assert len(late) == 1 and late[0]["expression"] == "Observation.effectiveDateTime"
    assert _go_live(client)["Organization/hosp-a"]["setBy"] == "config"


def test_a_refused_first_write_records_no_go_live(repo, app):
    client, _, clock = app
    client.put("/fhir/Patient/p1", json=patient())
    lab = {"performer": [{"reference": "Organization/lab-z"}]}
    # The lab's first result is refused (dated before the patient's birth is a rejection in
    # the test region), and with it the go-live its transaction would have recorded.
    refused = systolic(120, effectiveDateTime="1960-01-01", **lab)
    assert client.post("/fhir/Observation", json=refused).status_code == 422
    assert "Organization/lab-z" not in _go_live(client)
    clock.now = NOW + DAY
    assert client.post("/fhir/Observation", json=systolic(120, **lab)).status_code == 201
    # Recorded with the accepted write: the moment the lab's data first reached Huitong
    # (the refused result did reach it).
    assert _go_live(client)["Organization/lab-z"]["liveSince"] == NOW


@pytest.mark.parametrize(("institutions", "path"), [
    ({"hosp-a": {"live_since": "2020-01-01"}}, "institutions.hosp-a"),
    ({"Organization/": {"live_since": "2020-01-01"}}, "institutions.Organization/"),
    ({"Organization/a": {"live_since": "last year"}}, "institutions.Organization/a.live_since"),
    ({"Organization/a": {"live": "2020-01-01"}}, "institutions.Organization/a.live"),
    ({"Organization/a": "2020-01-01"}, "institutions.Organization/a"),
])  # fmt: skip
def test_invalid_institution_settings_are_refused_with_their_path(repo, app, institutions, path):
    _, service, _ = app
    with pytest.raises(QualityConfigError) as err:
        service.set_config({"institutions": institutions}, by="test")
    assert [p.path for p in err.value.problems] == [path]
    assert all(p.message_en and p.message_zh for p in err.value.problems)
