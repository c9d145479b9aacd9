"""Read and search benchmark against a loaded database.

    python bench/ingest.py --engine postgresql --keep postgresql://…/db    # load first
    python bench/read_search.py --db postgresql://…/db [--seconds 15]

- read by id: ``wrk`` (Debian package ``wrk``) for ``--seconds`` with 2 threads and 32
  connections over random ``Patient``/``Observation``/``Encounter`` ids; reports req/s and
  the p99 latency wrk measured;
- the issue's searches and ``Patient/$everything``: 200 concrete requests each (values
  sampled from the data), sent sequentially by one client; reports p50/p95/max in ms.

Results go to ``bench/results/read-search-<engine>.json``.

Options for the read-by-id run (defaults keep the measurement above unchanged):
``--audit on|off`` sets ``HUITONG_AUDIT`` for the server (default: the environment's, i.e.
on); ``--reads-only`` skips the searches; ``--warmup S`` runs wrk for S seconds first, not
measured (each worker's connections, prepared statements and start-up threads settle);
``--connections N`` changes wrk's ``-c``; ``--runs N`` repeats the measured run. Every run
also reports the CPU the server's processes and its PostgreSQL backends spent per request
(``/proc``, same machine): on a shared machine that is the figure load distorts least.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import ServerProcess, cpu_snapshot, cpu_spent

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


def query(url: str, sql: str) -> list[tuple]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql.replace("%s", "?")).fetchall()
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def sample(url: str, sql: str, n: int) -> list[tuple]:
    rows = query(url, sql)
    random.shuffle(rows)
    return rows[:n] or rows


def build_requests(url: str, n: int = 200) -> dict[str, list[str]]:
    rnd = random.Random(7)
    obs = sample(url, "SELECT r.target_id, t.system, t.code, d.lo FROM idx_reference r "
                 "JOIN idx_token t ON t.rid = r.rid AND t.param = 'code' "
                 "JOIN idx_date d ON d.rid = r.rid AND d.param = 'date' "
                 "WHERE r.res_type = 'Observation' AND r.param = 'patient' LIMIT 20000", n)
    pats = sample(url, "SELECT s.norm, d.lo FROM idx_string s JOIN idx_date d "
                  "ON d.rid = s.rid AND d.param = 'birthdate' "
                  "WHERE s.res_type = 'Patient' AND s.param = 'family' LIMIT 20000", n)
    enc = sample(url, "SELECT DISTINCT target_id FROM idx_reference WHERE res_type = "
                 "'Encounter' AND param = 'patient' LIMIT 20000", n)
    cond = sample(url, "SELECT DISTINCT system, code FROM idx_token WHERE res_type = "
                  "'Condition' AND param = 'code' LIMIT 20000", n)
    med = sample(url, "SELECT DISTINCT target_id FROM idx_reference WHERE res_type = "
                 "'MedicationRequest' AND param = 'patient' LIMIT 20000", n)
    has = sample(url, "SELECT DISTINCT system, code FROM idx_token WHERE res_type = "
                 "'Observation' AND param = 'code' LIMIT 20000", n)
    ever = sample(url, "SELECT res_id FROM resources WHERE res_type = 'Patient' AND NOT "
                  "deleted LIMIT 20000".replace("NOT deleted", "deleted = FALSE"), n)

    def day(us: int) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(us / 1e6))

    def pick(rows: list[tuple]) -> tuple:
        return rows[rnd.randrange(len(rows))]

    out: dict[str, list[str]] = {
        "Observation?patient=X&code=Y&date=ge…": [],
        "Patient?name=…&birthdate=…": [],
        "Encounter?patient=X&_sort=-date&_count=20": [],
        "Condition?code=…": [],
        "MedicationRequest?patient=X&_include=MedicationRequest:medication": [],
        "Patient?_has:Observation:patient:code=…": [],
        "Patient/$everything": [],
    }
    for _ in range(n):
        p, s, c, lo = pick(obs)
        out["Observation?patient=X&code=Y&date=ge…"].append(
            f"Observation?patient={p}&code={quote(f'{s}|{c}')}"
            f"&date=ge{day(lo - 86400 * 10**6 * 365)}")
        name, born = pick(pats)
        out["Patient?name=…&birthdate=…"].append(f"Patient?name={quote(name)}&birthdate={day(born)}")
        out["Encounter?patient=X&_sort=-date&_count=20"].append(
            f"Encounter?patient={pick(enc)[0]}&_sort=-date&_count=20")
        s, c = pick(cond)
        out["Condition?code=…"].append(f"Condition?code={quote(f'{s}|{c}')}")
        out["MedicationRequest?patient=X&_include=MedicationRequest:medication"].append(
            f"MedicationRequest?patient={pick(med)[0]}&_include=MedicationRequest:medication")
        s, c = pick(has)
        out["Patient?_has:Observation:patient:code=…"].append(
            f"Patient?_has:Observation:patient:code={quote(f'{s}|{c}')}")
        out["Patient/$everything"].append(f"Patient/{pick(ever)[0]}/$everything")
    return out


def timed(base: str, paths: list[str]) -> dict[str, float]:
    lat = []
    with httpx.Client(base_url=base + "/", timeout=60) as client:
        client.get(paths[0])
        for p in paths:
            t0 = time.perf_counter()
            r = client.get(p)
            lat.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"{p}: HTTP {r.status_code} {r.text[:300]}")
    lat.sort()
    return {
        "p50_ms": round(lat[len(lat) // 2], 2),
        "p95_ms": round(lat[int(len(lat) * 0.95) - 1], 2),
        "max_ms": round(lat[-1], 2),
        "n": len(lat),
    }


def wrk_reads(base: str, url: str, seconds: int, *, connections: int = 32,
              server_pid: int | None = None, warmup: int = 0) -> dict[str, object]:
    if not shutil.which("wrk"):
        return {"skipped": "wrk not installed (apt-get install wrk)"}
    ids = query(url, "SELECT res_type, res_id FROM resources WHERE res_type IN ('Patient', "
                "'Observation', 'Encounter') AND deleted = FALSE LIMIT 50000")
    paths = [f"/fhir/{t}/{i}" for t, i in ids]
    lua = Path(tempfile.mkdtemp()) / "paths.lua"
    lua.write_text(
        "local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
        "math.randomseed(7)\n"
        "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n"
    )
    host = base.rsplit("/fhir", 1)[0]

    def run(secs: int) -> str:
        return subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{secs}s", "--latency", "-s", str(lua), host],
            capture_output=True, text=True, check=True,
        ).stdout

    if warmup:
        run(warmup)
    before, wrk0 = cpu_snapshot(server_pid, url), os.times()
    out = run(seconds)
    after, wrk1 = cpu_snapshot(server_pid, url), os.times()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for pct in ("50", "90", "99"):
        m = re.search(pct + r"%\s+([\d.]+)(us|ms|s)", out)
        lat[pct] = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else None
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    spent = cpu_spent(before, after)
    wrk_cpu = (wrk1.children_user + wrk1.children_system) - (wrk0.children_user
                                                              + wrk0.children_system)
    return {"requests_per_s": round(rps), "p99_ms": lat["99"], "p50_ms": lat["50"],
            "p90_ms": lat["90"], "requests": total,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "server_cpu_ms_per_request": round(spent["server"] * 1000 / max(total, 1), 3),
            "db_cpu_ms_per_request": round(spent["db"] * 1000 / max(total, 1), 3),
            "wrk_cpu_ms_per_request": round(wrk_cpu * 1000 / max(total, 1), 3),
            "load_average": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", required=True)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--label", default="")
    ap.add_argument("--audit", choices=("on", "off"), help="HUITONG_AUDIT for the server")
    ap.add_argument("--reads-only", action="store_true", help="skip the searches")
    ap.add_argument("--warmup", type=int, default=0, help="unmeasured wrk seconds first")
    ap.add_argument("--connections", type=int, default=32, help="wrk -c")
    ap.add_argument("--runs", type=int, default=1, help="measured read-by-id runs")
    args = ap.parse_args()
    engine = "sqlite" if args.db.startswith("sqlite") else "postgresql"
    if engine == "postgresql":
        # What autovacuum does after a bulk load, done now so the run does not depend on
        # when it wakes up: planner statistics, and the visibility map for index-only scans.
        with psycopg.connect(args.db, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    else:
        with sqlite3.connect(args.db.removeprefix("sqlite:///")) as conn:
            conn.execute("ANALYZE")
    counts = dict(query(args.db, "SELECT res_type, COUNT(*) FROM resources GROUP BY res_type"))
    requests = {} if args.reads_only else build_requests(args.db)
    env = {"HUITONG_WORKERS": str(args.workers)}
    if args.audit:
        env["HUITONG_AUDIT"] = args.audit
    with ServerProcess(args.db, extra_env=env) as server:
        runs = [
            wrk_reads(server.base, args.db, args.seconds, connections=args.connections,
                      server_pid=server.proc.pid, warmup=args.warmup if i == 0 else 0)
            for i in range(args.runs)
        ]
        reads = runs[0] if len(runs) == 1 else {"runs": runs}
        searches = {name: timed(server.base, paths) for name, paths in requests.items()}
        peak, peak_process = server.peak_rss_mb(), server.peak_process_rss_mb()
        peak_pss = server.peak_pss_mb()
    result = {
        "engine": engine, "label": args.label, "resources": sum(counts.values()),
        "workers": args.workers, "audit": args.audit or os.environ.get("HUITONG_AUDIT", "on"),
        "observations": counts.get("Observation", 0), "read_by_id": reads,
        "searches": searches, "server_peak_rss_mb": round(peak),
        "server_peak_process_rss_mb": round(peak_process),
        "server_peak_pss_mb": round(peak_pss),
        "machine": f"{platform.node()} {platform.machine()}", "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = f"-{args.label}" if args.label else ""
    (RESULTS / f"read-search-{engine}{suffix}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
