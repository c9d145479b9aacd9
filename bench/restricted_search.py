"""What a clinician's access restriction adds to a search: the same searches run in-process
on a loaded database, unrestricted and restricted as a clinician of the organization that
saw the most patients (opt-in consent region, the default policy).

    python bench/restricted_search.py --db postgresql://…/db [--n 100] [--sql]

Each request compiles its restriction as the server does (policy decision → SQL), then runs
the search. Patient-based searches use patients the clinician may see (seen at the
organization), so both runs return the same rows; code searches cross every patient and the
restriction filters them. Reports p50/p95 per search, both ways, and the ratio of the p50s
(target: restricted ≤ 1.2 × unrestricted). ``--sql`` prints one restricted statement.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg

from huitong.access.principal import Principal, Role
from huitong.fhir.search.parse import parse_search
from huitong.server.authorization import read_restriction
from huitong.store import open_repository, search_sql

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
SQL_ONLY = False  # --sql-only: the restriction as one SQL condition (no patient sets read first)


def _rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]  # type: ignore[arg-type]


def _requests(url: str, n: int) -> tuple[str, dict[str, list[tuple[str, list[tuple[str, str]]]]]]:
    org = _rows(
        url,
        "SELECT target_id FROM idx_reference WHERE res_type = 'Encounter' AND "
        "param = 'service-provider' GROUP BY 1 ORDER BY COUNT(DISTINCT patient_key) "
        "DESC LIMIT 1",
    )[0][0]
    seen = [
        r[0]
        for r in _rows(
            url,
            "SELECT DISTINCT patient_key FROM idx_reference WHERE res_type = 'Encounter' AND "
            "param = 'service-provider' AND target_id = %s AND patient_key IS NOT NULL",
            (org,),
        )
    ]
    codes = _rows(
        url,
        "SELECT system, code FROM idx_token WHERE res_type = 'Observation' "
        "AND param = 'code' AND patient_key = ANY(%s) LIMIT 5000",
        (seen,),
    )
    conds = _rows(
        url,
        "SELECT DISTINCT system, code FROM idx_token WHERE res_type = "
        "'Condition' AND param = 'code' LIMIT 2000",
    )
    rnd = random.Random(7)
    out: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {
        "Observation?patient=X&code=Y": [],
        "Encounter?patient=X&_sort=-date&_count=20": [],
        "Condition?code=…": [],
        "Observation?code=…": [],
        "Patient?gender=female": [],
    }
    for _ in range(n):
        p = rnd.choice(seen)
        s, c = rnd.choice(codes)
        out["Observation?patient=X&code=Y"].append(
            ("Observation", [("patient", p), ("code", f"{s}|{c}")])
        )
        out["Encounter?patient=X&_sort=-date&_count=20"].append(
            ("Encounter", [("patient", p), ("_sort", "-date"), ("_count", "20")])
        )
        s, c = rnd.choice(conds)
        out["Condition?code=…"].append(("Condition", [("code", f"{s}|{c}")]))
        s, c = rnd.choice(codes)
        out["Observation?code=…"].append(("Observation", [("code", f"{s}|{c}")]))
        out["Patient?gender=female"].append(("Patient", [("gender", "female")]))
    return org, out


def _time(
    repo: Any, principal: Principal | None, reqs: list[tuple[str, list[tuple[str, str]]]]
) -> list[float]:
    lat = []
    for rtype, params in reqs:
        t0 = time.perf_counter()
        query = parse_search(rtype, params)
        query.total = "estimate"  # what an HTTP search without _total gets
        restrict = (
            None
            if principal is None
            else read_restriction(
                principal,
                "search-type",
                (rtype,),
                now=repo.clock(),
                dialect=repo.dialect,
                resolve=None if SQL_ONLY else getattr(repo, "access_query", None),
            )
        )
        repo.search(query, restrict=restrict)
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


def _stats(lat: list[float]) -> dict[str, float]:
    lat = sorted(lat)
    return {
        "p50_ms": round(statistics.median(lat), 2),
        "p95_ms": round(lat[max(0, int(len(lat) * 0.95) - 1)], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--sql", action="store_true")
    ap.add_argument(
        "--sql-only",
        action="store_true",
        help="compile the restriction without reading the patient sets first",
    )
    args = ap.parse_args()
    global SQL_ONLY
    SQL_ONLY = args.sql_only
    org, requests = _requests(args.db, args.n)
    principal = Principal(
        Role.CLINICIAN, user_id="bench", organization_id=org, practitioner_id="bench-practitioner"
    )
    repo = open_repository(args.db, upgrade=False)
    if args.sql:
        rtype, params = requests["Condition?code=…"][0]
        restrict = read_restriction(
            principal,
            "search-type",
            (rtype,),
            now=repo.clock(),
            dialect=repo.dialect,
            resolve=None if SQL_ONLY else repo.access_query,
        )
        print(
            search_sql.search_page_sql(
                parse_search(rtype, params), repo.dialect, restrict=restrict
            )[0]
        )
    result: dict[str, Any] = {"organization": org, "searches": {}}
    for name, reqs in requests.items():
        _time(repo, None, reqs[:10])  # warm-up
        _time(repo, principal, reqs[:10])
        # interleaved halves, so a busy moment of the machine hits both sides alike
        free, restricted = [], []
        for start in range(0, len(reqs), 10):
            free += _time(repo, None, reqs[start : start + 10])
            restricted += _time(repo, principal, reqs[start : start + 10])
        f, r = _stats(free), _stats(restricted)
        result["searches"][name] = {
            "unrestricted": f,
            "restricted": r,
            "ratio_p50": round(r["p50_ms"] / f["p50_ms"], 2),
        }
        print(
            f"{name:45s} free p50 {f['p50_ms']:7.2f} p95 {f['p95_ms']:7.2f} | restricted "
            f"p50 {r['p50_ms']:7.2f} p95 {r['p95_ms']:7.2f} | ×{r['p50_ms'] / f['p50_ms']:.2f}"
        )
    repo.close()
    result |= {
        "machine": f"{platform.node()} {platform.machine()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"restricted-search{'-sql-only' if SQL_ONLY else ''}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
