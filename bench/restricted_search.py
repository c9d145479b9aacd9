"""What a clinician's access restriction adds to a search: the same searches run in-process
on a loaded PostgreSQL database, each as a whole authenticated request would run them —
token checked (``server/authn.py``: one statement), restriction built
(``server/authorization.py``), search run — by a clinician (opt-in consent region, the
default policy) and by a backend client with ``system/*.rs`` (unrestricted).

    createdb -T perf_1x ha_1x && huitong db upgrade --db postgresql://…/ha_1x
    python bench/restricted_search.py --db postgresql://…/ha_1x [--n 100] [--consents 200]

The bench writes (accounts, tokens and ``--consents`` Consent resources granting the
clinician's organization: use a copy of the load). The clinician belongs to the
organization that saw the most patients; patient-based searches pick among the patients
they may see (seen there, or consented), so both sides return the same rows; code searches
cross every patient and the restriction filters them.

Reports p50/p95 per search and the ratio of the p50s (target: restricted ≤ 1.2 ×
unrestricted) three ways: against the unrestricted request (the target's comparison);
restricted with the kept access facts disabled (every request reads them: what a request
right after a relevant write pays); and the bare search with no authentication at all
(the comparison of earlier sessions, which left the token check out of both sides).

Each side presents one token throughout, as a client does for the token's life: its
signature is checked on the first request and then kept (access/verified_tokens.py); the
token row, expiry and revocation are still read at every request.

Wall-clock p50s on a shared two-core machine move by ±30 % from run to run, so the CPU each
request costs is reported too (``cpu_ms``, Linux): this process plus its PostgreSQL
backends, from ``/proc/<pid>/schedstat``, summed over the same interleaved chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from huitong.access import AuthService, Principal, Role
from huitong.access.oauth_server import ACCESS_TOKEN_TYP
from huitong.access.passwords import PasswordHasher
from huitong.fhir.search.parse import parse_search
from huitong.server.authn import authenticate
from huitong.server.authorization import read_restriction
from huitong.store import open_repository

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
ISSUER = "http://127.0.0.1:8080"
Request = tuple[str, list[tuple[str, str]]]


def _rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]  # type: ignore[arg-type]


def _organization(url: str) -> tuple[str, list[str]]:
    org = _rows(
        url,
        "SELECT target_id FROM idx_reference WHERE res_type = 'Encounter' AND "
        "param = 'service-provider' GROUP BY 1 ORDER BY COUNT(DISTINCT patient_key) "
        "DESC, 1 LIMIT 1",
    )[0][0]
    seen = _rows(
        url,
        "SELECT DISTINCT patient_key FROM idx_reference WHERE res_type = 'Encounter' AND "
        "param = 'service-provider' AND target_id = %s AND patient_key IS NOT NULL",
        (org,),
    )
    return org, sorted(r[0] for r in seen)


def _grant_consents(repo: Any, url: str, org: str, n: int) -> list[str]:
    """``n`` patients (fixed choice) consent to share with ``org``; returns them."""
    patients = sorted(r[0] for r in _rows(
        url, "SELECT res_id FROM resources WHERE res_type = 'Patient' AND NOT deleted"))
    chosen = random.Random(11).sample(patients, min(n, len(patients)))
    with repo.transaction() as tx:
        for pid in chosen:
            tx.update({
                "resourceType": "Consent", "id": f"bench-consent-{pid}"[:64], "status": "active",
                "scope": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": f"Patient/{pid}"},
                "policyRule": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "OPTIN"}]},
                "provision": {"type": "permit", "actor": [{
                    "role": {"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "code": "IRCP"}]},
                    "reference": {"reference": f"Organization/{org}"}}]},
            })  # fmt: skip
    return chosen


def _requests(url: str, visible: list[str], n: int) -> dict[str, list[Request]]:
    codes = _rows(
        url,
        "SELECT system, code FROM idx_token WHERE res_type = 'Observation' "
        "AND param = 'code' AND patient_key = ANY(%s) LIMIT 5000",
        (visible,),
    )
    conds = _rows(
        url,
        "SELECT DISTINCT system, code FROM idx_token WHERE res_type = "
        "'Condition' AND param = 'code' ORDER BY 1, 2 LIMIT 2000",
    )
    rnd = random.Random(7)
    out: dict[str, list[Request]] = {
        "Observation?patient=X&code=Y": [],
        "Encounter?patient=X&_sort=-date&_count=20": [],
        "Condition?code=…": [],
        "Observation?code=…": [],
        "Patient?gender=female": [],
    }
    for _ in range(n):
        p = rnd.choice(visible)
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
    return out


class _Tokens:
    """Accounts and access tokens signed as the authorization server signs them."""

    def __init__(self, service: AuthService) -> None:
        self.service = service
        self.run = uuid.uuid4().hex[:8]
        service.clients.add("confidential", client_id=f"bench-ehr-{self.run}", name="Bench",
                            redirect_uris=["https://bench.example.cn/cb"],
                            scopes="user/*.rs")  # fmt: skip

    def _sign(self, claims: dict[str, Any], user_id: str | None, client: str, scope: str) -> str:
        jti = f"bench-{uuid.uuid4().hex}"
        now = self.service.clock()
        self.service.tokens.record(
            family_id=jti, client_id=client, user_id=user_id, scope=scope, launch_patient=None,
            access_jti=jti, access_expires_at=now + 3_600_000_000,
        )  # fmt: skip
        full = {"iss": ISSUER, "aud": f"{ISSUER}/fhir", "iat": now // 1_000_000,
                "exp": now // 1_000_000 + 3600, "jti": jti, "client_id": client,
                "scope": scope, **claims}  # fmt: skip
        return self.service.keys.sign(full, typ=ACCESS_TOKEN_TYP)

    def clinician(self, org: str) -> str:
        user = self.service.accounts.add(
            f"bench-clinician-{self.run}", "correct horse battery", Role.CLINICIAN,
            organization_id=org, practitioner_id="bench-practitioner",
        )  # fmt: skip
        return self._sign({"sub": user.id, "role": "clinician", "org": org,
                           "fhirUser": "Practitioner/bench-practitioner"},
                          user.id, f"bench-ehr-{self.run}", "user/*.rs")  # fmt: skip

    def system(self) -> str:
        cid = f"bench-backend-{self.run}"
        self.service.clients.add("confidential", client_id=cid, name="Bench backend",
                                 scopes="system/*.rs")  # fmt: skip
        return self._sign({"sub": cid, "role": "system"}, None, cid, "system/*.rs")


def _time(repo: Any, service: AuthService | None, token: str | None, reqs: list[Request],
          *, keep: bool = True) -> list[float]:  # fmt: skip
    lat = []
    headers = {"authorization": f"Bearer {token}"}
    for rtype, params in reqs:
        t0 = time.perf_counter()
        query = parse_search(rtype, params)
        query.total = "estimate"  # what an HTTP search without _total gets
        restrict = None
        if service is not None:
            principal: Principal | None = authenticate(headers, service, issuer=ISSUER)
            assert principal is not None
            if not keep:
                service.facts.clear()
            restrict = read_restriction(
                principal, "search-type", (rtype,), now=repo.clock(), dialect=repo.dialect,
                resolve=repo.access_query,
            )  # fmt: skip
        repo.search(query, restrict=restrict)
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


def _backend_pids(repo: Any) -> set[int]:
    """The PostgreSQL backends of the repository's pools (idle between requests), or none
    where they cannot be found (the CPU columns are then this process alone)."""
    pids: set[int] = set()
    for name in ("_pool", "_generic_pool"):
        idle = getattr(getattr(repo, name, None), "_pool", None)  # psycopg_pool's idle deque
        for conn in list(idle or ()):
            pids.add(conn.info.backend_pid)
    return pids


def _cpu_ns(pids: set[int]) -> int:
    """CPU time (ns) used so far by this process and ``pids`` (0 off Linux)."""
    total = 0
    for pid in (os.getpid(), *pids):
        try:
            with open(f"/proc/{pid}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except OSError:
            pass
    return total


def _timed_cpu(cpu: list[int], repo: Any, *args: Any, **kw: Any) -> list[float]:
    """:func:`_time`, adding the CPU it cost (process and backends) to ``cpu[0]``."""
    pids = _backend_pids(repo)
    start = _cpu_ns(pids)
    lat = _time(repo, *args, **kw)
    cpu[0] += _cpu_ns(pids) - start
    return lat


def _stats(lat: list[float]) -> dict[str, float]:
    lat = sorted(lat)
    return {
        "p50_ms": round(statistics.median(lat), 2),
        "p95_ms": round(lat[max(0, int(len(lat) * 0.95) - 1)], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", required=True, help="a copy of a loaded database (it is written)")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--consents", type=int, default=200)
    args = ap.parse_args()
    repo = open_repository(args.db, upgrade=False)
    service = AuthService(repo, password_hasher=PasswordHasher(time_cost=1, memory_cost=8,
                                                               parallelism=1))  # fmt: skip
    org, seen = _organization(args.db)
    consented = _grant_consents(repo, args.db, org, args.consents) if args.consents else []
    visible = sorted(set(seen) | set(consented))
    requests = _requests(args.db, visible, args.n)
    tokens = _Tokens(service)
    clinician, system = tokens.clinician(org), tokens.system()
    result: dict[str, Any] = {
        "organization": org, "patients_seen": len(seen), "consents": len(consented),
        "searches": {},
    }  # fmt: skip
    for name, reqs in requests.items():
        for who, keep in ((system, True), (clinician, True), (clinician, False)):
            _time(repo, service, who, reqs[:10], keep=keep)  # warm-up
        _time(repo, None, None, reqs[:10])
        # interleaved tenths, so a busy moment of the machine hits every side alike
        free, restricted, uncached, bare = [], [], [], []
        cpu_f, cpu_r, cpu_b = [0], [0], [0]
        for start in range(0, len(reqs), 10):
            chunk = reqs[start : start + 10]
            free += _timed_cpu(cpu_f, repo, service, system, chunk)
            restricted += _timed_cpu(cpu_r, repo, service, clinician, chunk)
            uncached += _time(repo, service, clinician, chunk, keep=False)
            bare += _timed_cpu(cpu_b, repo, None, None, chunk)
        f, r, u, b = _stats(free), _stats(restricted), _stats(uncached), _stats(bare)
        cf, cr, cb = (round(c[0] / len(reqs) / 1e6, 3) for c in (cpu_f, cpu_r, cpu_b))
        result["searches"][name] = {
            "unrestricted": f, "restricted": r, "restricted_facts_read": u, "bare_search": b,
            "ratio_p50": round(r["p50_ms"] / f["p50_ms"], 2),
            "ratio_p50_facts_read": round(u["p50_ms"] / f["p50_ms"], 2),
            "ratio_p50_vs_bare": round(r["p50_ms"] / b["p50_ms"], 2),
            "cpu_ms": {"unrestricted": cf, "restricted": cr, "bare_search": cb},
            "ratio_cpu": round(cr / cf, 2) if cf else None,
        }  # fmt: skip
        print(
            f"{name:43s} system {f['p50_ms']:6.2f}/{f['p95_ms']:6.2f} | clinician "
            f"{r['p50_ms']:6.2f}/{r['p95_ms']:6.2f} ×{r['p50_ms'] / f['p50_ms']:.2f} | "
            f"facts read {u['p50_ms']:6.2f} ×{u['p50_ms'] / f['p50_ms']:.2f} | bare "
            f"{b['p50_ms']:6.2f} (clinician ×{r['p50_ms'] / b['p50_ms']:.2f}) | cpu ms "
            f"{cf:.3f} / {cr:.3f} ×{cr / cf if cf else 0:.2f} (bare {cb:.3f})"
        )
    repo.close()
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[:3]
    result |= {
        "machine": f"{platform.node()} {platform.machine()}",
        "date": time.strftime("%Y-%m-%d"),
        "loadavg_end": load,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "restricted-search.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
