"""How much signing in and reading as the signed-in person cost the pages (issue 7).

Builds the small demo region on SQLite (the test world of tests/web), then times through the
ASGI app (no network):

- sign-in (password check with Argon2id + authorization-code grant with PKCE, in process);
- the patient overview with authentication OFF (the plain repository) and ON (a clinician
  of one of the patient's institutions: token authentication, the AuthorizedRepository's
  SQL restriction on every query, and the facts behind "why you can see this record");
- the "no access" page (the reason: the policy over the patient's facts);
- the patient search (by name).

Usage: python3 bench/web_pages.py [--rounds 20]. Prints medians and 90th percentiles in ms.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "web"))

from auth_world import build_auth_world, signed_in
from web_world import SyncClient

from huitong.store import open_repository


def timed(label: str, rounds: int, call: Callable[[], object]) -> None:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p90 = samples[max(0, int(len(samples) * 0.9) - 1)]
    print(f"{label:<44} median {statistics.median(samples):8.1f} ms   p90 {p90:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    repo = open_repository(f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}")
    world = build_auth_world(repo)
    patient = world.demo.patient
    print(f"{platform.node()} · {platform.processor() or platform.machine()} · "
          f"Python {platform.python_version()} · {time.strftime('%Y-%m-%d')}")
    print(f"demo patient seen at {patient.institutions} institutions; rounds {args.rounds}")
    timed("sign-in (Argon2id + code grant)", max(3, args.rounds // 4),
          lambda: signed_in(world.app, world.users["clinician"]).close())
    demo = SyncClient(world.demo.app)
    clinician = signed_in(world.app, world.users["clinician"])
    outsider = signed_in(world.app, world.users["outside"])
    url = f"/app/patients/{patient.id}"
    timed("overview, auth off (demo)", args.rounds, lambda: demo.get(url))
    timed("overview, auth on (clinician, care relation)", args.rounds,
          lambda: clinician.get(url))
    timed("no-access page (reason from the policy)", args.rounds, lambda: outsider.get(url))
    timed("search by name, auth off", args.rounds,
          lambda: demo.get(f"/app/clinician?q={patient.name}"))
    timed("search by name, auth on", args.rounds,
          lambda: clinician.get(f"/app/clinician?q={patient.name}"))
    for client in (demo, clinician, outsider):
        client.close()
    repo.close()


if __name__ == "__main__":
    main()
