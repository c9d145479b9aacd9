"""Real Synthea bundles load through POST /fhir with quality on: nothing is rejected, and the
checks land in the counters with the encounters' institutions."""

from __future__ import annotations

import orjson
from quality_service_helpers import quality_app

from huitong.quality.store import FindingQuery
from huitong_testdata import synthea_bundles


def test_synthea_bundles_load_without_rejections(repo) -> None:
    client, service = quality_app(repo)
    try:
        for raw in synthea_bundles(3):
            bundle = orjson.loads(raw)
            resp = client.post("/fhir", json=bundle)
            assert resp.status_code == 200, resp.text[:2000]
        report = service.report()
        assert report.overall.applicable > 100
        assert report.overall.pass_rate is not None and report.overall.pass_rate > 0.9
        assert any(org.startswith("Organization/") for org in report.organizations)
        _, rejected = service.findings(FindingQuery(severity="reject"))
        assert rejected == 0
    finally:
        client.close()
