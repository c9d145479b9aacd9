"""Bulk NDJSON import (``$import``) on the real repository and a real server process:
per-line outcomes, idempotence, the import-directory restriction, and resumption — in
process after a database failure, and across a SIGKILL of the server."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from huitong.fhir.errors import Category, FhirError
from huitong.fhir.search.parse import parse_search
from huitong.ingest.bulk_import import BulkImporter
from huitong.store import Repository

NOW = 1_790_000_000_000_000


def _patient(i: int) -> dict:
    return {"resourceType": "Patient", "id": f"p{i}", "gender": "female",
            "identifier": [{"system": "urn:oid:1.2.3", "value": f"MRN{i}"}],
            "name": [{"family": f"Li{i}", "given": ["Na"]}], "birthDate": "1980-01-02"}


def _observation(i: int, patients: int) -> dict:
    return {"resourceType": "Observation", "id": f"o{i}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/p{i % patients}"},
            "effectiveDateTime": "2026-01-02T03:04:05+08:00",
            "valueQuantity": {"value": 60 + i % 40, "unit": "/min",
                              "system": "http://unitsofmeasure.org", "code": "/min"}}


def _ndjson(path: Path, lines: list[object]) -> None:
    path.write_bytes(b"".join(
        (x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in lines))


def _params(*inputs: tuple[str, str]) -> dict:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "inputFormat", "valueCode": "application/fhir+ndjson"},
        *({"name": "input", "part": [{"name": "type", "valueCode": t},
                                     {"name": "url", "valueUri": u}]} for t, u in inputs)]}


def _importer(repo: Repository, folder: Path | None, chunk: int = 200) -> BulkImporter:
    clock = itertools.count(NOW, 1000)
    ids = (f"job{i}" for i in itertools.count())
    return BulkImporter(repo, import_dir=folder, clock=lambda: next(clock),
                        new_id=lambda: next(ids), chunk=chunk)


def _count(repo: Repository, rtype: str) -> int:
    return repo.search(parse_search(rtype, [("_summary", "count")])).total or 0


def test_files_load_with_errors_by_line_and_a_second_import_duplicates_nothing(repo, tmp_path):
    _ndjson(tmp_path / "Patient.ndjson", [
        _patient(0), b"{not json", _patient(1), {"resourceType": "Patient"},
        _observation(9, 1), b"", _patient(2),
    ])
    _ndjson(tmp_path / "Observation.ndjson", [_observation(i, 3) for i in range(5)])
    importer = _importer(repo, tmp_path, chunk=2)
    params = _params(("Patient", "Patient.ndjson"),
                     ("Observation", f"file://{tmp_path / 'Observation.ndjson'}"))
    job = importer.start(params)
    assert importer.status(job)["status"] == "in-progress"
    importer.run(job)
    status = importer.status(job)
    assert status["status"] == "completed"
    patients, observations = status["files"]
    assert (patients["loaded"], patients["failed"], patients["linesCommitted"]) == (3, 3, 7)
    assert [e["line"] for e in patients["errors"]] == [2, 4, 5]
    assert (observations["loaded"], observations["failed"]) == (5, 0)
    assert (_count(repo, "Patient"), _count(repo, "Observation")) == (3, 5)
    # the same files again: keyed on their ids, nothing new appears
    again = importer.start(params)
    importer.run(again)
    assert (_count(repo, "Patient"), _count(repo, "Observation")) == (3, 5)


@pytest.mark.parametrize(
    ("folder", "url", "category"),
    [
        (True, "../outside.ndjson", Category.FORBIDDEN),
        (True, "/etc/passwd", Category.FORBIDDEN),
        (True, "https://example.org/Patient.ndjson", Category.NOT_SUPPORTED),
        (True, "missing.ndjson", Category.INVALID),
        (False, "Patient.ndjson", Category.NOT_SUPPORTED),  # no import directory: off
    ],
)
def test_inputs_are_restricted_to_the_import_directory(repo, tmp_path, folder, url, category):
    inside = tmp_path / "imports"
    inside.mkdir()
    _ndjson(inside / "Patient.ndjson", [_patient(0)])
    _ndjson(tmp_path / "outside.ndjson", [_patient(0)])
    importer = _importer(repo, inside if folder else None)
    with pytest.raises(FhirError) as err:
        importer.start(_params(("Patient", url)))
    assert err.value.category is category
    assert _count(repo, "Patient") == 0


def test_a_job_stopped_by_the_database_resumes_at_its_last_committed_line(repo, tmp_path):
    _ndjson(tmp_path / "Patient.ndjson", [_patient(i) for i in range(9)])
    importer = _importer(repo, tmp_path, chunk=2)
    job = importer.start(_params(("Patient", "Patient.ndjson")))
    real_write, calls = importer._write, {"n": 0}

    def failing(tx, rtype, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise FhirError(Category.UNAVAILABLE, "database unavailable")
        return real_write(tx, rtype, batch)

    importer._write = failing  # type: ignore[method-assign]
    with pytest.raises(FhirError):
        importer.run(job)
    status = importer.status(job)
    assert status["status"] == "in-progress"
    assert status["files"][0]["linesCommitted"] == 4
    assert importer.unfinished() == [job]
    resumed = _importer(repo, tmp_path, chunk=2)
    resumed.run(job)
    done = resumed.status(job)
    assert done["status"] == "completed" and done["files"][0]["loaded"] == 9
    assert _count(repo, "Patient") == 9
    # the lines committed before the failure were not written a second time
    assert {repo.read("Patient", f"p{i}").version_id for i in range(9)} == {1}


# -- a real server, killed mid-import ------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    def __init__(self, db: str, folder: Path, log: Path) -> None:
        self.db, self.log, self.port = db, log, _free_port()
        self.env = {**os.environ, "HUITONG_AUTH": "off", "HUITONG_IMPORT_DIR": str(folder)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}/fhir"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "huitong", "serve", "--db", self.db, "--port", str(self.port)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),  # noqa: SIM115
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/metadata", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(self.log.read_text())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _db_counts(db: str) -> tuple[int, int, int]:
    sql = ("SELECT (SELECT COUNT(*) FROM resources WHERE res_type = 'Observation'), "
           "(SELECT COUNT(*) FROM resource_history WHERE res_type = 'Observation'), "
           "(SELECT COUNT(*) FROM resources WHERE res_type = 'Patient' AND res_id LIKE 'p%')")
    if db.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(db.removeprefix("sqlite:///"))
        try:
            return tuple(conn.execute(sql).fetchone())  # type: ignore[return-value]
        finally:
            conn.close()
    with psycopg.connect(db) as conn:
        return tuple(conn.execute(sql).fetchone())  # type: ignore[return-value]


@pytest.mark.slow
def test_sigkill_mid_import_then_restart_finishes_with_exact_counts(engine_url, tmp_path):
    folder = tmp_path / "imports"
    folder.mkdir()
    patients, observations = 40, 3000
    _ndjson(folder / "Patient.ndjson", [_patient(i) for i in range(patients)])
    _ndjson(folder / "Observation.ndjson",
            [_observation(i, patients) for i in range(observations)])
    subprocess.run([sys.executable, "-m", "huitong", "db", "upgrade", "--db", engine_url],
                   check=True, stdout=subprocess.DEVNULL)
    server = _Server(engine_url, folder, tmp_path / "server.log")
    server.start()
    try:
        answer = httpx.post(f"{server.base}/$import", timeout=30,
                            content=json.dumps(_params(("Patient", "Patient.ndjson"),
                                                       ("Observation", "Observation.ndjson"))),
                            headers={"Content-Type": "application/fhir+json"})
        assert answer.status_code == 202, answer.text
        status_url = answer.headers["Content-Location"]
        deadline = time.time() + 120
        while time.time() < deadline:
            body = httpx.get(status_url, timeout=60).json()
            if body["files"][1]["linesCommitted"] >= 200:
                break
            time.sleep(0.05)
        assert body["status"] == "in-progress", "the kill should land mid-import"
        server.kill()
        committed = _db_counts(engine_url)
        assert 0 < committed[0] < observations
        server.start()  # the job resumes by itself
        deadline = time.time() + 300
        while time.time() < deadline:
            polled = httpx.get(status_url, timeout=60)  # a loaded CI machine answers slowly
            if polled.status_code == 200:
                break
            assert polled.status_code == 202 and polled.headers.get("X-Progress")
            time.sleep(0.2)
        final = polled.json()
        assert final["status"] == "completed", final
        assert [f["loaded"] for f in final["files"]] == [patients, observations]
        assert [f["failed"] for f in final["files"]] == [0, 0]
        assert final["outcome"]["resourceType"] == "OperationOutcome"
    finally:
        server.stop()
    # every line exactly once: all resources, and none written twice (no second version)
    assert _db_counts(engine_url) == (observations, 0, patients)


def test_import_is_in_the_capability_statement():
    from huitong.server.operations import OPERATIONS

    names = {op.name for op in OPERATIONS}
    assert {"import", "import-status"} <= names
