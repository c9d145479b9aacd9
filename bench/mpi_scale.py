"""MPI at scale: a million source records on PostgreSQL, ``$match`` latency, batch re-link.

    python bench/mpi_scale.py load --db postgresql://…/hm_mpi --sources 1000000  # resumable
    python bench/mpi_scale.py match  --db … --queries 2000    # $match p50/p95/p99
    python bench/mpi_scale.py relink --db … [--apply]         # batch re-link (dry run default)

``load`` builds, in bulk (``COPY``, not through HTTP), the database of an index that has
been running: the source Patients institutions sent, their normalised records and blocking
keys, each person's sources linked to one golden identity, and the golden Patients
assembled from them by survivorship (:func:`load`). A full ``huitong mpi relink`` with
writes is then meaningful: the links it changes and the golden Patients it rebuilds read
and write real rows. The synthetic population is :mod:`huitong.mpi.synth` (1–4 noisy
source records per person); the links loaded are the ground truth, which the shipped model
does not reproduce everywhere (uncorroborated matches go to review), so a re-link has
work to do.

``match`` draws fresh noisy records of people in the index (another noise seed) and runs
the same work as ``Patient/$match`` in-process: normalise, one candidate query, score,
read the golden Patients of the hits.

Results go to ``bench/results/mpi_scale_*.json``. Other processes share this 2-core machine:
the load is single-process on purpose.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import resource
import statistics
import sys
import threading
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from huitong.fhir.validation import validate_resource
from huitong.mpi.blocking import KEY_SCHEME, index_keys
from huitong.mpi.codec import record_to_json
from huitong.mpi.golden import GoldenSource, assemble_golden
from huitong.mpi.normalize.identifiers import ID_RESIDENT
from huitong.mpi.normalize.phones import parse_phone
from huitong.mpi.record import IdentityRecord, record_from_patient
from huitong.mpi.resident_id import (
    ResidentIdError,
    make_resident_id,
    normalize_resident_id,
    parse_resident_id,
)
from huitong.mpi.service import GOLDEN_SYSTEM, GOLDEN_TAG, SYSTEM_ACTOR, IdentityService
from huitong.mpi.synth import generate_people, noisy_patients
from huitong.store import open_repository

RESULTS = Path(__file__).resolve().parent / "results"
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/huitong_bench_mpi"


def _ensure_db(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


def _chunk_people(k: int, size: int, seed: int) -> list[Any]:
    return generate_people(size, seed=seed * 100003 + k)


def _chunk_sources(k: int, people: list[Any], seed: int, noise_seed: int = 0) -> list[Any]:
    sources = noisy_patients(people, seed=seed * 100003 + k + noise_seed)
    for s in sources:
        p = s.patient
        p["id"] = f"c{k}{'q' if noise_seed else ''}{p['id']}"
        p["managingOrganization"] = {"reference": f"Organization/{s.org}"}
        try:  # a typo'd birth date is not a FHIR date: the sending system would drop it
            date.fromisoformat(p.get("birthDate", ""))
        except ValueError:
            p.pop("birthDate", None)
    return sources


def _year_shift(yyyy: str, clone: int) -> str:
    """Clone ``clone`` of a person is born in another year (a bijection on 1930-2023)."""
    return str(1930 + (int(yyyy) - 1930 + clone * 37) % 94) if yyyy.isdigit() else yyyy


def _shift_date(text: str, clone: int) -> str:
    """A ``YYYY-MM-DD`` birth date moved to the clone's year (29 February becomes the 28th)."""
    if not clone or len(text) < 10:
        return text
    moved = _year_shift(text[:4], clone) + text[4:]
    return moved[:5] + "02-28" if moved[5:10] == "02-29" else moved


def _phone(number: str, clone: int) -> str:
    if clone == 0 or len(number) < 8:
        return number
    head, tail = number[:-8], int(number[-8:])
    return f"{head}{(tail + clone * 7_919_113) % 10**8:08d}"


def _clone_rid_value(value: str, clone: int) -> str:
    """The clone's resident ID number: a valid one stays valid (the same area and sequence,
    the clone's birth year; a 15-digit one stays 15 digits while the year allows); one that
    failed validation keeps its error with the year moved."""
    if clone == 0:
        return value
    try:
        rid = parse_resident_id(value)
    except ResidentIdError:
        text = normalize_resident_id(value)
        return text[:6] + _year_shift(text[6:10], clone) + text[10:] if len(text) >= 10 else text
    born = rid.birth_date
    year = int(_year_shift(f"{born.year}", clone))
    born = date(year, born.month, min(born.day, 28 if born.month == 2 else born.day))
    number = make_resident_id(rid.area_code, born, int(rid.number[14:17]))
    if rid.upgraded_from_15 and 1900 <= year <= 1999:
        return number[:6] + number[8:17]
    return number


def _clone_patient(p: dict[str, Any], clone: int, pid: str, stamp: str) -> dict[str, Any]:
    """Source Patient ``p`` as clone ``clone`` of its person, stored as ``pid``: another
    birth year (and so resident ID), other phone numbers and identifier values; names,
    addresses and the noise pattern are kept, so blocks and comparisons behave as in the
    generated population."""
    out: dict[str, Any] = {
        "resourceType": "Patient", "id": pid, "meta": {"versionId": "1", "lastUpdated": stamp},
    }  # fmt: skip
    for key, value in p.items():
        if key not in out:
            out[key] = value
    if clone == 0:
        return out
    if "birthDate" in out:
        out["birthDate"] = _shift_date(out["birthDate"], clone)
    out["identifier"] = [
        {**i, "value": _clone_rid_value(i["value"], clone)}
        if i.get("system") == ID_RESIDENT
        else {**i, "value": f"{i['value']}C{clone}"}
        for i in p.get("identifier", [])
    ]
    telecom = []
    for t in p.get("telecom", []):
        phone = parse_phone(t.get("value", "")) if t.get("system") in ("phone", "sms") else None
        telecom.append({**t, "value": _phone(phone.number, clone)} if phone else t)
    if telecom:
        out["telecom"] = telecom
    return out


def _clone_record(base: IdentityRecord, patient: dict[str, Any]) -> IdentityRecord:
    """The normalised record of a cloned Patient: names and addresses (the costly part of
    normalising) are the base record's; everything the clone changed is normalised from the
    clone itself by the same code as the write pipeline, so the two always agree."""
    changed = record_from_patient(
        {k: patient[k] for k in ("id", "meta", "identifier", "telecom", "birthDate", "gender")
         if k in patient},
        source_org=base.source_org,
    )  # fmt: skip
    return replace(
        base, source=changed.source, birth=changed.birth, resident_id=changed.resident_id,
        resident_id_text=changed.resident_id_text, phones=changed.phones,
        identifiers=changed.identifiers, updated_at=changed.updated_at,
    )  # fmt: skip


def _base(people: int, seed: int) -> dict[int, list[tuple[dict[str, Any], IdentityRecord]]]:
    """The generated population: each person's source Patients and normalised records."""
    out: dict[int, list[tuple[dict[str, Any], IdentityRecord]]] = {}
    for s in _chunk_sources(0, _chunk_people(0, people, seed), seed):
        org = s.patient["managingOrganization"]["reference"]
        out.setdefault(s.entity, []).append(
            (s.patient, record_from_patient(s.patient, source_org=org))
        )
    return out


_COLUMNS = {
    "resources": "res_type, res_id, version, last_updated, deleted, method, patient_key, content",
    "mpi_records": "source, record",
    "mpi_keys": "key, source",
    "mpi_sources": "source, source_org, golden, grade, linked_by, linked_at, reason",
}


def load(args: argparse.Namespace) -> None:
    """An index that has been running, written in bulk: per person, its source Patients (in
    ``resources``, as the write pipeline stores them), their normalised records and keys
    (``mpi_records``, ``mpi_keys``), links to one golden identity per person
    (``mpi_sources``) and the golden Patient assembled from them by survivorship, exactly as
    the identity service would. ``--base`` people are generated (Faker, noise model, full
    normalisation); the rest are clones of them (:func:`_clone_patient`), which costs
    microseconds instead of milliseconds per record. Loading stops after the person that
    brings the source records to ``--sources`` (or after ``--people`` people).

    Patients are written without search-index rows: neither ``$match`` nor the re-link
    searches them, and 20-odd index rows per Patient would triple the database. One
    transaction per clone; a rerun resumes after the last complete one."""
    _ensure_db(args.db)
    open_repository(args.db).close()  # migrations
    started = time.perf_counter()
    base = _base(args.base, args.seed)
    print(
        f"base population: {len(base)} people, {sum(map(len, base.values()))} sources, "
        f"{time.perf_counter() - started:.0f}s",
        flush=True,
    )
    now = int(time.time() * 1_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now / 1e6))
    people_done = sources_done = 0
    with psycopg.connect(args.db) as conn:
        loaded = {
            r[0]: (int(r[1]), int(r[2]))
            for r in conn.execute(
                "SELECT split_part(golden, '-', 1), COUNT(DISTINCT golden), COUNT(*) "
                "FROM mpi_sources GROUP BY 1"
            ).fetchall()
        }
        for clone in itertools.count():
            if people_done >= args.people or sources_done >= args.sources:
                break
            if f"g{clone}" in loaded:
                people_done += loaded[f"g{clone}"][0]
                sources_done += loaded[f"g{clone}"][1]
                continue
            t0 = time.perf_counter()
            rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in _COLUMNS}
            for entity, members in base.items():
                if people_done >= args.people or sources_done >= args.sources:
                    break
                people_done += 1
                gid = f"g{clone}-{entity}"
                golden_sources = []
                for p, r in members:
                    pid = f"k{clone}-{p['id']}"
                    patient = _clone_patient(p, clone, pid, stamp)
                    rec = _clone_record(r, patient)
                    if sources_done % 997 == 0:  # spot check: the shortcut equals the pipeline
                        full = record_from_patient(patient, source_org=r.source_org)
                        assert full == rec, (full, rec)
                        validate_resource(patient)
                    sources_done += 1
                    golden_sources.append(GoldenSource(rec.source, rec.source_org, patient))
                    rows["resources"].append(
                        ("Patient", pid, 1, now, False, "PUT", pid, orjson.dumps(patient).decode())
                    )
                    rows["mpi_records"].append((rec.source, record_to_json(rec)))
                    rows["mpi_keys"].extend((k, rec.source) for k in index_keys(rec))
                    rows["mpi_sources"].append(
                        (rec.source, rec.source_org, gid, "certain", SYSTEM_ACTOR, now,
                         "bench load")
                    )  # fmt: skip
                # what IdentityService._refresh_golden writes
                golden = assemble_golden(golden_sources, {}, golden_id=gid)
                golden["identifier"] = [{"system": GOLDEN_SYSTEM, "value": gid}]
                golden = {
                    "resourceType": "Patient", "id": gid,
                    "meta": {"versionId": "1", "lastUpdated": stamp, "tag": [GOLDEN_TAG]},
                    **{k: v for k, v in golden.items() if k not in ("resourceType", "id")},
                }  # fmt: skip
                rows["resources"].append(
                    ("Patient", gid, 1, now, False, "PUT", gid, orjson.dumps(golden).decode())
                )
            t1 = time.perf_counter()
            with conn.cursor() as cur:
                for table, cols in _COLUMNS.items():
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                        for row in rows[table]:
                            copy.write_row(row)
                cur.execute(
                    "INSERT INTO mpi_state (name, value) VALUES ('key_scheme', %s) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (KEY_SCHEME,),
                )
            conn.commit()
            print(
                f"clone {clone}: {len(rows['mpi_sources'])} sources, "
                f"{len(rows['resources']) - len(rows['mpi_sources'])} goldens, "
                f"{len(rows['mpi_keys'])} keys (total {sources_done:,} sources, "
                f"{people_done:,} people); build {t1 - t0:.1f}s, "
                f"COPY {time.perf_counter() - t1:.1f}s",
                flush=True,
            )
    with psycopg.connect(args.db, autocommit=True) as conn:
        # VACUUM sets the visibility map: blocking then reads mpi_keys by index-only scans
        conn.execute("VACUUM ANALYZE")
        size = conn.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        ).fetchall()
        print(f"database size {size[0][0]}")
    print(f"loaded in {time.perf_counter() - started:.0f}s")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def match(args: argparse.Namespace) -> None:
    repo: Any = open_repository(args.db)  # the engines carry clock and new_id
    service = IdentityService(repo, clock=repo.clock, new_id=repo.new_id)
    goldens = int(repo.query("SELECT COUNT(DISTINCT golden) FROM mpi_sources")[0][0])
    sources = int(repo.query("SELECT COUNT(*) FROM mpi_sources")[0][0])
    # query people of complete clones only (a load may stop inside the last one)
    per_clone = repo.query("SELECT split_part(source, '-', 1), COUNT(*) FROM mpi_sources "
                           "GROUP BY 1")  # fmt: skip
    full = max(n for _c, n in per_clone)
    clones = sorted(int(c.removeprefix("Patient/k")) for c, n in per_clone if n == full)
    rng = random.Random(11)
    people = _chunk_people(0, args.base, args.seed)
    picked = rng.sample(people, args.queries)
    queries: list[dict[str, Any]] = []
    for s in _chunk_sources(0, picked, args.seed, noise_seed=7)[: args.queries]:
        # the same person's record from yet another source: other noise, same clone
        clone = rng.choice(clones)
        p = _clone_patient(s.patient, clone, s.patient["id"], "2026-01-01T00:00:00Z")
        p.pop("meta")
        queries.append(p)
    service.match(queries[0])  # model load, connection warm-up
    latencies, hits, certain = [], 0, 0
    cpu0 = time.process_time()
    for patient in queries:
        t0 = time.perf_counter()
        found = service.match(patient, count=10)
        service.golden_patients([h[0] for h in found])  # what Patient/$match returns
        latencies.append((time.perf_counter() - t0) * 1000)
        hits += bool(found)
        certain += bool(found and found[0][2] == "certain")
    result = {
        "machine": f"{platform.machine()} {platform.system()}, 2 cores shared",
        "date": time.strftime("%Y-%m-%d"),
        "golden_identities": goldens,
        "source_records": sources,
        "queries": len(latencies),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(_percentile(latencies, 0.95), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
        # this process's CPU per query (normalise, score, decode): what load cannot inflate
        "client_cpu_ms_per_query": round((time.process_time() - cpu0) * 1000 / len(queries), 2),
        "load_average": round(os.getloadavg()[0], 1),
        "with_a_match": hits,
        "top_hit_certain": certain,
    }
    (RESULTS / "mpi_scale_match.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    repo.close()


def relink_bench(args: argparse.Namespace) -> None:
    from huitong.mpi.relink import relink

    repo: Any = open_repository(args.db)  # the engines carry clock and new_id
    service = IdentityService(repo, clock=repo.clock, new_id=repo.new_id)
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  {stage} {done:,}/{total:,} ({os.getloadavg()[0]:.1f})", flush=True)

    # The workers' own peak memory, sampled from /proc while they run: RUSAGE_CHILDREN would
    # report this process's size, which a spawned child has for a moment before its exec.
    worker_peak = [0]
    running = threading.Event()

    def watch() -> None:
        me = os.getpid()
        while not running.wait(1.0):
            try:
                children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
            except OSError:
                return
            for child in children:
                try:
                    status = Path(f"/proc/{child}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        worker_peak[0] = max(worker_peak[0], int(line.split()[1]))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    summary = relink(service, dry_run=not args.apply, progress=progress, workers=args.workers)
    seconds = time.perf_counter() - t0
    running.set()
    me = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "wall_seconds": round(seconds, 1),
        "peak_rss_mib": round(me.ru_maxrss / 1024),
        "worker_peak_rss_mib": round(worker_peak[0] / 1024),
        # CPU time of this process and its workers (PostgreSQL's own not included): on a
        # shared machine it says more than the wall clock
        "cpu_seconds": round(me.ru_utime + me.ru_stime, 1),
        "worker_cpu_seconds": round(workers.ru_utime + workers.ru_stime, 1),
        "load_average_before": [round(x, 1) for x in load_before],
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
        **summary.to_json(),
    }
    name = "mpi_scale_relink_apply.json" if args.apply else "mpi_scale_relink.json"
    (RESULTS / name).write_text(json.dumps(result, indent=1))
    print("\n".join(line for line in summary.lines() if line))
    print(json.dumps(result, indent=1))
    repo.close()


def retrain(args: argparse.Namespace) -> None:
    """The whole cycle with real Patients at a smaller scale: ingest ``--people`` people's
    noisy records through the repository with the identity service on (online linking),
    retrain the model by EM on them, then re-link in batch with writes — twice, the second
    run must change nothing."""
    from huitong.mpi.relink import relink

    people = args.people if args.people < 10**9 else 2000
    name = args.db.rsplit("/", 1)[1] + "_retrain"  # beside --db, recreated each run
    url = args.db.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _ensure_db(url)
    repo: Any = open_repository(url)  # the engines carry clock and new_id
    ids = (f"G{n}" for n in itertools.count())
    service = IdentityService(repo, clock=repo.clock, new_id=lambda: next(ids))
    service.install()
    sources = _chunk_sources(0, _chunk_people(0, people, args.seed), args.seed)
    t0 = time.perf_counter()
    for n in range(0, len(sources), 500):
        with repo.transaction() as tx:
            for s in sources[n : n + 500]:
                tx.update(s.patient)
    ingest = time.perf_counter() - t0
    t0 = time.perf_counter()
    _model, records, pairs = service.train()
    train = time.perf_counter() - t0
    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        summary = relink(service)
        runs.append({"wall_seconds": round(time.perf_counter() - t0, 1), **summary.to_json()})
    result = {
        "date": time.strftime("%Y-%m-%d"), "people": people, "sources": len(sources),
        "online_ingest_seconds": round(ingest, 1), "train_seconds": round(train, 1),
        "train_records": records, "train_pairs": pairs, "relink": runs,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }  # fmt: skip
    (RESULTS / "mpi_scale_retrain.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    repo.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("load", "match", "relink", "retrain"))
    ap.add_argument("--db", default=DEFAULT_DB)
    ap.add_argument("--people", type=int, default=10**9, help="load: at most this many people")
    ap.add_argument("--sources", type=int, default=1_000_000,
                    help="load: stop after the person that brings source records to this")
    ap.add_argument("--chunk", type=int, default=20_000)
    ap.add_argument("--base", type=int, default=25_000, help="generated people; the rest cloned")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--apply", action="store_true", help="relink: write, not a dry run")
    ap.add_argument("--workers", type=int, default=None, help="relink: scoring processes")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    commands = {"load": load, "match": match, "relink": relink_bench, "retrain": retrain}
    commands[args.command](args)


if __name__ == "__main__":
    main()
