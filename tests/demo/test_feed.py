"""The demo's recent feed: deterministic, dated where it should be, and the reason it exists —
with it loaded, the quality dashboard has timeliness checks (some late) and plausibility
warnings to show, and nothing is rejected."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from fhir_test_client import Client
from huitong.cli import main
from huitong.clock import MonotonicClock
from huitong.config import Settings
from huitong.demo import generate_region
from huitong.demo._fhir import CST
from huitong.demo.feed import (
    FEED_DAYS,
    LATE_DAYS,
    LIVE_DAYS,
    clock_moment,
    go_live_document,
    live_feed,
    live_since,
)
from huitong.demo.systems import LOINC
from huitong.fhir.dates import parse_date_range
from huitong.importer import InProcessTarget, load_bundles
from huitong.quality.model import Category
from huitong.quality.ruleset import RuleSet
from huitong.quality.service import QualityService
from huitong.quality.store import FindingQuery
from huitong.server.app import create_app
from huitong.store import Repository, open_repository

Resource = dict[str, Any]

SEED = 20261122
NOW = datetime(2027, 3, 9, 2, 40, tzinfo=UTC)  # 10:40 in China, a clinic morning
_DAY_US = 86_400_000_000


@cache
def _default_feed() -> tuple[Resource, ...]:
    return tuple(live_feed(now=NOW))


def _resources(bundles: Any, rtype: str | None = None) -> list[Resource]:
    return [e["resource"] for b in bundles for e in b["entry"]
            if rtype is None or e["resource"]["resourceType"] == rtype]  # fmt: skip


def _event_times(resource: Resource) -> list[datetime]:
    """Every moment a resource records (what the timeliness rules and the eye read)."""
    texts = [
        resource.get("effectiveDateTime"), resource.get("issued"),
        resource.get("occurrenceDateTime"), resource.get("receivedTime"),
        (resource.get("period") or {}).get("start"), (resource.get("period") or {}).get("end"),
        (resource.get("collection") or {}).get("collectedDateTime"),
    ]  # fmt: skip
    return [datetime.fromisoformat(t) for t in texts if t is not None]


def _systolic(observation: Resource) -> float | None:
    for component in observation.get("component", []):
        if component["code"]["coding"][0]["code"] == "8480-6":
            value: float = component["valueQuantity"]["value"]
            return value
    return None


# --- the generator ---------------------------------------------------------------------------


def test_same_seed_and_now_give_identical_bundles() -> None:
    first = orjson.dumps(live_feed(now=NOW, seed=7, residents=40))
    assert orjson.dumps(live_feed(now=NOW, seed=7, residents=40)) == first
    assert orjson.dumps(live_feed(now=NOW, seed=8, residents=40)) != first
    assert orjson.dumps(live_feed(now=NOW + timedelta(days=1), seed=7, residents=40)) != first


def test_a_later_feed_updates_the_earlier_one() -> None:
    # Ids depend on the seed alone: running the demo again on the same database replaces
    # the feed rather than adding a second one, as the history's stable ids do.
    def ids(now: datetime) -> Counter[tuple[str, str]]:
        feed = live_feed(now=now, residents=40)
        return Counter((r["resourceType"], r["id"]) for r in _resources(feed))

    assert ids(NOW) == ids(NOW + timedelta(days=9, hours=13))
    assert max(ids(NOW).values()) == 1


def test_refuses_a_naive_clock_and_negative_residents() -> None:
    with pytest.raises(ValueError, match="timezone"):
        live_feed(now=datetime(2027, 3, 9, 10, 40))
    with pytest.raises(ValueError, match="residents"):
        live_feed(now=NOW, residents=-1)
    assert live_feed(now=NOW, residents=0) == []


def test_every_event_is_recent_or_late_but_after_go_live() -> None:
    went_live = datetime.combine(live_since(NOW), datetime.min.time(), tzinfo=UTC)
    recent, late = [], []
    for bundle in _default_feed():
        times = [t for r in _resources([bundle]) for t in _event_times(r)]
        assert times and all(went_live <= t < NOW for t in times), times
        if min(times) >= NOW - timedelta(days=FEED_DAYS + 1):
            recent.append(bundle)
            continue
        # Late: beyond the 30 days the rules allow, within the days the feed is live.
        assert NOW - timedelta(days=LATE_DAYS[1] + 1) <= min(times)
        assert max(times) <= NOW - timedelta(days=LATE_DAYS[0] - 1)
        assert max(times) < NOW - timedelta(days=31)
        late.append(bundle)
    assert recent and late
    # Nothing is dated so close to now that a result issued three hours later is in future.
    issued = [datetime.fromisoformat(r["issued"]) for r in _resources(_default_feed())
              if "issued" in r]  # fmt: skip
    assert issued and max(issued) < NOW


def test_default_feed_is_mostly_timely_with_a_few_late_and_implausible_visits() -> None:
    feed = _default_feed()
    encounters = _resources(feed, "Encounter")
    types = Counter(r["resourceType"] for r in _resources(feed))
    assert {"Encounter", "Observation", "DiagnosticReport", "Specimen", "Immunization"} <= set(types)
    assert 60 <= len(encounters) <= 90  # a quarter of the 300 residents, one visit each
    cutoff = NOW - timedelta(days=31)
    late = [e for e in encounters if datetime.fromisoformat(e["period"]["end"]) < cutoff]
    assert 0.02 <= len(late) / len(encounters) <= 0.08  # about 5 %
    observations = _resources(feed, "Observation")
    home = [o for o in observations if "device" in o]
    assert len(home) >= 50  # the home monitors' uploads
    systolic = [s for o in observations if (s := _systolic(o)) is not None]
    mistyped = [s for s in systolic if s > 300]
    wrong_unit = [o for o in observations
                  if o["code"]["coding"][0] == {"system": LOINC, "code": "15074-8",
                                                "display": "Glucose [Moles/volume] in Blood"}
                  and o["valueQuantity"]["code"] == "mg/dL"]  # fmt: skip
    assert len(mistyped) == 1 and len(wrong_unit) == 1
    assert (len(mistyped) + len(wrong_unit)) / len(encounters) <= 0.04  # about 2 %
    # The rest are what a clinic measures, and the wrong unit is only a wrong unit.
    assert all(90 <= s <= 200 for s in systolic if s <= 300)
    assert 60 <= wrong_unit[0]["valueQuantity"]["value"] <= 250  # mg/dL of a fasting glucose


def test_feed_refers_only_to_resources_of_the_same_region() -> None:
    history = generate_region(seed=SEED, residents=30)
    known = {f"{r['resourceType']}/{r['id']}" for r in _resources(history)}
    feed = live_feed(now=NOW, seed=SEED, residents=30)
    referenced = {
        ref for bundle in feed
        for ref in _references(bundle) if not ref.startswith("urn:uuid:")
    }  # fmt: skip
    assert {ref.split("/")[0] for ref in referenced} >= {"Patient", "Organization", "Practitioner"}
    assert referenced <= known


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def test_go_live_document_adds_dates_and_keeps_the_region_configuration() -> None:
    current = {
        "version": 1, "region": "临江",
        "rules": {"observation.systolic-in-range": {"severity": "reject"}},
        "institutions": {"Organization/elsewhere": {"live_since": "2020-01-01"}},
    }  # fmt: skip
    document = go_live_document(NOW, seed=SEED, current=current)
    assert document["rules"] == current["rules"] and document["region"] == "临江"
    assert current["institutions"] == {"Organization/elsewhere": {"live_since": "2020-01-01"}}
    ruleset = RuleSet.from_config(document)  # valid as the operator API would take it
    demo = {org: us for org, us in ruleset.live_since.items() if org != "Organization/elsewhere"}
    assert len(demo) == 10  # 4 hospitals and 6 health centres; not the two authorities
    went_live = datetime.combine(live_since(NOW), datetime.min.time(), tzinfo=UTC)
    assert set(demo.values()) == {parse_date_range(went_live.date().isoformat())[0]}
    assert (NOW.astimezone(CST).date() - live_since(NOW)).days == LIVE_DAYS
    # With nothing in force, only the dates: the shipped rules stay as they are.
    assert set(go_live_document(NOW, seed=SEED)) == {"version", "institutions"}


def test_clock_moment_reads_the_clock_as_a_datetime() -> None:
    assert clock_moment(int(NOW.timestamp()) * 1_000_000) == NOW


# --- the point of it: the pipeline with quality on ----------------------------------------


def _load(repo: Repository, settings: Settings, bundles: list[Resource]) -> int:
    target = InProcessTarget(repo, settings)
    try:
        counts = load_bundles(target, bundles, label="test")
    finally:
        target.close()
    return int(counts["__errors__"])


def test_feed_gives_the_quality_dashboard_something_to_show(
    repo: Repository, engine_url: str
) -> None:
    settings = Settings.from_env({}, database_url=engine_url, auth="off")
    # The wall clock, as the server's: it stamps receipts, and the demo reads it at start.
    clock = MonotonicClock()
    started = clock_moment(clock())
    residents = 12  # three visits: one late, one mistyped pressure, one glucose in mg/dL
    assert _load(repo, settings, generate_region(seed=SEED, residents=residents)) == 0
    service = QualityService(repo, clock=clock)
    history = service.report()
    # The problem: the history is each institution's backfill, so nothing is timely or late.
    assert history.overall.applicable > 0
    assert history.categories[Category.TIMELINESS].applicable == 0

    service.set_config(go_live_document(started, seed=SEED, current=None), by="test")
    assert _load(repo, settings, live_feed(now=started, seed=SEED, residents=residents)) == 0

    report = service.report()
    timeliness = report.categories[Category.TIMELINESS]
    assert timeliness.applicable > 0
    assert 0 < timeliness.failed < timeliness.applicable / 2  # mostly on time
    plausibility = report.categories[Category.PLAUSIBILITY]
    assert plausibility.failed > history.categories[Category.PLAUSIBILITY].failed
    failing = {r.rule_id for r in report.worst_rules}
    assert {"encounter.arrived-in-time", "observation.systolic-in-range",
            "observation.lab-unit-fits-test"} <= failing
    # Warnings, findings an operator can open, in both languages.
    late, total = service.findings(FindingQuery(rule_id="encounter.arrived-in-time"))
    assert total == 1 and late[0].severity == "warn"
    assert "days after" in late[0].message_en and "天才送达" in late[0].message_zh
    for rule in ("observation.systolic-in-range", "observation.lab-unit-fits-test"):
        found, total = service.findings(FindingQuery(rule_id=rule))
        assert total == 1 and found[0].severity == "warn"


def test_demo_command_loads_the_feed_and_the_api_shows_timeliness(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    result = CliRunner().invoke(main, ["demo", "--db", db, "--residents", "8", "--no-serve"],
                                env={"HUITONG_QUALITY_CONFIG": ""})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Loading a recent feed" in result.output and "正在导入近期数据" in result.output
    assert "went live on" in result.output and "开始实时接入" in result.output

    repo = open_repository(db)
    client = Client(create_app(repo, Settings.from_env({}, database_url=db, auth="off")))
    try:
        scores = client.get("/api/quality/scores").json()
        go_live = client.get("/api/quality/go-live").json()
    finally:
        client.close()
        repo.close()
    timeliness = scores["categories"]["timeliness"]
    assert timeliness["applicable"] > 0 and timeliness["failed"] > 0
    assert scores["categories"]["plausibility"]["failed"] > 0
    # The demo institutions' go-live dates come from the region document.
    assert sum(i["setBy"] == "config" for i in go_live["institutions"]) == 10
