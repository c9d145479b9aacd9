"""A bug becomes a 500 OperationOutcome with a generic message, logged without patient data."""

from __future__ import annotations

import logging

from server_helpers import BASE, Client, assert_outcome

from huitong.config import Settings
from huitong.server import create_app

SECRET = "张三 110101199003077777"


class BrokenRepository:
    """Every call fails with an exception whose message carries personal data."""

    dialect = "broken"

    def __getattr__(self, name):
        if name.startswith("add_"):  # installing hooks is set-up, not handling a request
            return lambda *args, **kwargs: None

        def fail(*args, **kwargs):
            raise RuntimeError(f"boom while handling {SECRET}")
        return fail


def test_unexpected_exception_is_a_500_outcome_and_logs_no_content(caplog):
    app = create_app(BrokenRepository(), Settings.from_env({}, database_url="x", auth="off", base_url=BASE, mpi="off", quality="off", audit="off", translate="off"),
                     clock=lambda: 0, new_id=lambda: "x")
    client = Client(app)
    try:
        with caplog.at_level(logging.ERROR, logger="huitong.server"):
            r = client.get("/fhir/Patient/p-1")
            body = assert_outcome(r, 500, "exception")
            assert SECRET not in r.text
            assert body["issue"][0]["diagnostics"] == (
                "internal server error; the failure has been logged")
            batch = client.post("/fhir", json={
                "resourceType": "Bundle", "type": "batch",
                "entry": [{"request": {"method": "GET", "url": "Patient/p-1"}}]})
            assert batch.status_code == 200
            assert batch.json()["entry"][0]["response"]["status"] == "500 Internal Server Error"
        logged = caplog.text
        assert "RuntimeError" in logged
        assert "GET /Patient/p-1" in logged
        assert SECRET not in logged
    finally:
        client.close()
