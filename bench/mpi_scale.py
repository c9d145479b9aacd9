"""MPI at scale: a million golden identities on PostgreSQL, ``$match`` latency, batch re-link.

    python bench/mpi_scale.py load   --people 1000000     # once; resumable by chunk
    python bench/mpi_scale.py match  --queries 2000       # $match p50/p95/p99
    python bench/mpi_scale.py relink [--apply]            # batch re-link (dry run by default)

``load`` writes a synthetic Chinese population (:mod:`huitong.mpi.synth`, 1–4 noisy source
records per person) straight into the MPI tables with ``COPY`` — normalised records,
blocking keys and links (each person's sources linked to one golden identity, as an index
that has been running) — and writes one golden Patient per person through the repository
(validation, search indexes, history), in one transaction per chunk. Source Patients are
not stored (the MPI reads its own normalised records; only a golden rebuild reads sources),
which is why ``relink`` runs as a dry run here: it loads, blocks, scores and decides every
record and reports what it would change. Default database: ``huitong_bench_mpi``.

``match`` draws fresh noisy records of people in the index (another noise seed) and runs
the same work as ``Patient/$match`` in-process: normalise, one candidate query, score,
read the golden Patients of the hits.

Results go to ``bench/results/mpi_scale_*.json``. Other processes share this 2-core machine:
the load is single-process on purpose.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from huitong.mpi.blocking import index_keys
from huitong.mpi.codec import record_to_json
from huitong.mpi.golden import GoldenSource, assemble_golden
from huitong.mpi.record import IdentityRecord, record_from_patient
from huitong.mpi.resident_id import ResidentId, make_resident_id
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


def _phone(number: str, clone: int) -> str:
    if clone == 0 or len(number) < 8:
        return number
    head, tail = number[:-8], int(number[-8:])
    return f"{head}{(tail + clone * 7_919_113) % 10**8:08d}"


def _clone_rid(rid: ResidentId | None, text: str, clone: int) -> tuple[ResidentId | None, str]:
    if clone == 0:
        return rid, text
    if rid is not None:
        born = rid.birth_date
        year = int(_year_shift(f"{born.year}", clone))
        born = date(year, born.month, min(born.day, 28 if born.month == 2 else born.day))
        number = make_resident_id(rid.area_code, born, int(rid.number[14:17]))
        return replace(rid, number=number, birth_date=born), ""
    if len(text) >= 10:
        return None, text[:6] + _year_shift(text[6:10], clone) + text[10:]
    return None, text


def _clone_record(r: IdentityRecord, clone: int, source: str) -> IdentityRecord:
    """The same noisy records, as another person: another birth year (and so resident ID),
    other phone numbers and identifier values; names, addresses and the noise pattern are
    kept, so blocks and comparisons behave as in the generated population."""
    rid, text = _clone_rid(r.resident_id, r.resident_id_text, clone)
    return replace(
        r,
        source=source,
        birth=_year_shift(r.birth[:4], clone) + r.birth[4:] if r.birth else "",
        resident_id=rid,
        resident_id_text=text,
        phones=tuple(replace(p, number=_phone(p.number, clone)) for p in r.phones),
        identifiers=tuple(
            replace(i, value=f"{i.value}C{clone}" if clone else i.value) for i in r.identifiers
        ),
    )


def _base(people: int, seed: int) -> dict[int, list[tuple[dict[str, Any], IdentityRecord]]]:
    """The generated population: each person's source Patients and normalised records."""
    out: dict[int, list[tuple[dict[str, Any], IdentityRecord]]] = {}
    for s in _chunk_sources(0, _chunk_people(0, people, seed), seed):
        org = s.patient["managingOrganization"]["reference"]
        out.setdefault(s.entity, []).append(
            (s.patient, record_from_patient(s.patient, source_org=org))
        )
    return out


def load(args: argparse.Namespace) -> None:
    """``--base`` people are generated (Faker, noise model, full normalisation); the rest of
    ``--people`` are clones of them (see :func:`_clone_record`), which costs microseconds
    instead of milliseconds per record. Golden Patients are written with COPY straight into
    the resource table (no search-index rows: this database serves $match and re-link)."""
    _ensure_db(args.db)
    open_repository(args.db).close()  # migrations
    clones = (args.people + args.base - 1) // args.base
    started = time.perf_counter()
    base = _base(args.base, args.seed)
    print(
        f"base population: {len(base)} people, {sum(map(len, base.values()))} sources, "
        f"{time.perf_counter() - started:.0f}s",
        flush=True,
    )
    goldens: dict[int, dict[str, Any]] = {}
    for entity, members in base.items():
        goldens[entity] = assemble_golden(
            [GoldenSource(r.source, r.source_org, p) for p, r in members], {}, golden_id="x"
        )
    now = int(time.time() * 1_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with psycopg.connect(args.db) as conn:
        loaded = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT split_part(golden, '-', 1) FROM mpi_sources"
            ).fetchall()
        }
        for clone in range(clones):
            if f"g{clone}" in loaded:
                continue
            t0 = time.perf_counter()
            records, keys, links, patients = [], [], [], []
            for entity, members in base.items():
                if clone * args.base + entity >= args.people:
                    continue
                gid = f"g{clone}-{entity}"
                refs = []
                for _p, r in members:
                    rec = _clone_record(r, clone, f"Patient/k{clone}-{r.source[8:]}")
                    refs.append(rec.source)
                    records.append((rec.source, record_to_json(rec)))
                    keys.extend((k, rec.source) for k in index_keys(rec))
                    links.append(
                        (
                            rec.source,
                            rec.source_org,
                            gid,
                            "certain",
                            SYSTEM_ACTOR,
                            now,
                            "bench load",
                        )
                    )
                golden = dict(goldens[entity])
                golden["id"] = gid
                golden["meta"] = {"versionId": "1", "lastUpdated": stamp, "tag": [GOLDEN_TAG]}
                golden["identifier"] = [{"system": GOLDEN_SYSTEM, "value": gid}]
                if "birthDate" in golden:
                    golden["birthDate"] = (
                        _year_shift(golden["birthDate"][:4], clone) + golden["birthDate"][4:]
                    )
                    if golden["birthDate"][5:] == "02-29":
                        golden["birthDate"] = golden["birthDate"][:5] + "02-28"
                golden["telecom"] = [
                    {
                        **t,
                        "value": _phone(
                            "".join(ch for ch in t.get("value", "") if ch.isdigit()), clone
                        ),
                    }
                    for t in golden.get("telecom", [])
                ]
                golden["link"] = [{"other": {"reference": ref}, "type": "seealso"} for ref in refs]
                patients.append(
                    ("Patient", gid, 1, now, False, "PUT", gid, orjson.dumps(golden).decode())
                )
            t1 = time.perf_counter()
            with conn.cursor() as cur:
                for table, cols, rows in (
                    (
                        "resources",
                        "res_type, res_id, version, last_updated, deleted, method, "
                        "patient_key, content",
                        patients,
                    ),
                    ("mpi_records", "source, record", records),
                    ("mpi_keys", "key, source", keys),
                    (
                        "mpi_sources",
                        "source, source_org, golden, grade, linked_by, linked_at, reason",
                        links,
                    ),
                ):
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            conn.commit()
            print(
                f"clone {clone + 1}/{clones}: {len(patients)} goldens, {len(records)} "
                f"sources, {len(keys)} keys; build {t1 - t0:.1f}s, "
                f"COPY {time.perf_counter() - t1:.1f}s",
                flush=True,
            )
    with psycopg.connect(args.db, autocommit=True) as conn:
        conn.execute("ANALYZE")
    print(f"loaded in {time.perf_counter() - started:.0f}s")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def match(args: argparse.Namespace) -> None:
    repo = open_repository(args.db)
    service = IdentityService(repo, clock=repo.clock, new_id=repo.new_id)
    goldens = int(repo.query("SELECT COUNT(DISTINCT golden) FROM mpi_sources")[0][0])
    sources = int(repo.query("SELECT COUNT(*) FROM mpi_sources")[0][0])
    clones = goldens // args.base
    rng = random.Random(11)
    people = _chunk_people(0, args.base, args.seed)
    picked = rng.sample(people, args.queries)
    queries: list[dict[str, Any]] = []
    for s in _chunk_sources(0, picked, args.seed, noise_seed=7)[: args.queries]:
        clone = rng.randrange(clones)
        p = s.patient
        if clone and "birthDate" in p:
            born = _year_shift(p["birthDate"][:4], clone) + p["birthDate"][4:]
            p["birthDate"] = born[:5] + "02-28" if born[5:] == "02-29" else born
        for ident in p.get("identifier", []):
            if ident["system"] == "urn:oid:2.16.156.10011.1.3":
                rec = record_from_patient(p)
                rid, text = _clone_rid(rec.resident_id, rec.resident_id_text, clone)
                ident["value"] = rid.number if rid else text
            elif clone:
                ident["value"] = f"{ident['value']}C{clone}"
        for t in p.get("telecom", []):
            digits = "".join(ch for ch in t["value"] if ch.isdigit())
            t["value"] = _phone(digits[2:] if digits.startswith("86") else digits, clone)
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

    repo = open_repository(args.db)
    service = IdentityService(repo, clock=repo.clock, new_id=repo.new_id)
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  {stage} {done:,}/{total:,}", flush=True)

    t0 = time.perf_counter()
    summary = relink(service, dry_run=not args.apply, progress=progress)
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "wall_seconds": round(seconds, 1),
        "peak_rss_mib": round(peak),
        # CPU time of this process: on a shared machine it says more than the wall clock
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        **summary.to_json(),
    }
    (RESULTS / "mpi_scale_relink.json").write_text(json.dumps(result, indent=1))
    print("\n".join(line for line in summary.lines() if line))
    print(json.dumps(result, indent=1))
    repo.close()


def retrain(args: argparse.Namespace) -> None:
    """The whole cycle with real Patients at a smaller scale: ingest ``--people`` people's
    noisy records through the repository with the identity service on (online linking),
    retrain the model by EM on them, then re-link in batch with writes — twice, the second
    run must change nothing."""
    import itertools

    from huitong.mpi.relink import relink

    url = args.db.rsplit("/", 1)[0] + "/huitong_bench_mpi_retrain"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS huitong_bench_mpi_retrain WITH (FORCE)")
    _ensure_db(url)
    repo = open_repository(url)
    ids = (f"G{n}" for n in itertools.count())
    service = IdentityService(repo, clock=repo.clock, new_id=lambda: next(ids))
    service.install()
    sources = _chunk_sources(0, _chunk_people(0, args.people, args.seed), args.seed)
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
        "date": time.strftime("%Y-%m-%d"), "people": args.people, "sources": len(sources),
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
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=20_000)
    ap.add_argument("--base", type=int, default=25_000, help="generated people; the rest cloned")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--apply", action="store_true", help="relink: write, not a dry run")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    commands = {"load": load, "match": match, "relink": relink_bench, "retrain": retrain}
    commands[args.command](args)


if __name__ == "__main__":
    main()
