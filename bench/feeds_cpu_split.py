"""CPU of the feed intake split at the write: a generated CSV file through
``IngestService.receive_file``, or device payloads through ``receive_devices`` in groups of
100 (an MQTT batch without the broker), on a fresh PostgreSQL database. Prints the caller's
thread CPU per row or reading, the part spent inside the FHIR transaction executor
(``submit``: the write path, identity, quality, the message store's marks) and the rest (the
ingest layer: reading, mapping, conversion, Bundle assembly, storing the raw messages).

    python bench/feeds_cpu_split.py csv|devices [--n 2000]

The machine is shared: compare two trees by alternating runs
(``PYTHONPATH=<tree>/src python bench/feeds_cpu_split.py …``); the split isolates the
ingest layer from the write path's larger and noisier share.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import feeds_end_to_end as e2e
from devices_mqtt import payload
from feeds_csv import MAPPING, generate

from huitong.ingest.channels import channel_from_config
from huitong.runtime import tune_collector


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("csv", "devices"))
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    tune_collector(freeze=False)
    e2e.ENGINE = "postgresql"
    repo, service = e2e.service_on_fresh_sqlite()
    inner = service.feeds.submit
    inside = [0.0]

    def timed(bundle: dict[str, Any], before_commit: Any) -> dict[str, Any]:
        started = time.thread_time()
        try:
            return inner(bundle, before_commit)  # type: ignore[no-any-return]
        finally:
            inside[0] += time.thread_time() - started

    service.feeds.submit = timed
    n = args.n
    if args.what == "csv":
        service.put_channel(channel_from_config({
            "id": "bench-csv", "organization": "Organization/c01", "transport": "file",
            "format": "csv", "mapping": tomllib.loads(MAPPING.replace("BATCH", "500"))}))
        with repo.transaction() as tx:
            tx.create({"resourceType": "Organization",
                       "identifier": [{"system": "urn:huitong:org-code", "value": "C01"}]})
        data = generate(n, "gb18030")
        started = time.thread_time()
        outcome = service.receive_file("bench-csv", data, name="bench.csv")
        cpu = time.thread_time() - started
        assert outcome.result == "created" and outcome.accepted == n, outcome.report[:3]
    else:
        service.put_channel(channel_from_config({
            "id": "bench-devices", "organization": "Organization/c01", "transport": "http",
            "format": "device"}))
        with repo.transaction() as tx:  # the readings' patients (conditional references)
            for i in range(500):
                tx.create({"resourceType": "Patient", "identifier": [
                    {"system": "urn:oid:2.16.156.10011.1.3", "value": f"11010119600305{i:04d}"}]})
        payloads = [payload(i) for i in range(n)]
        started = time.thread_time()
        for k in range(0, n, 100):
            outcomes = service.receive_devices("bench-devices", payloads[k:k + 100])
            assert all(o.result == "created" for o in outcomes)
        cpu = time.thread_time() - started
    repo.close()
    print(f"{args.what}: {n} in {cpu:.2f} s CPU: {cpu / n * 1e6:.0f} us each; "
          f"inside submit {inside[0] / n * 1e6:.0f}, ingest layer "
          f"{(cpu - inside[0]) / n * 1e6:.0f}", flush=True)


if __name__ == "__main__":
    main()
