"""The MPI batch path on Spark, for tens of millions of records (see docs/mpi.md).

    python bench/mpi_spark.py export --db URL --out DIR          # records, keys, model
    python bench/mpi_spark.py score  --dir DIR [--engine spark]  # → DIR/pairs.csv
    python bench/mpi_spark.py import --db URL --pairs DIR/pairs.csv [--dry-run]

``export`` writes what Spark needs from the index: ``records.jsonl`` (one normalised
record per line, :mod:`huitong.mpi.codec`), ``keys.csv`` (blocking keys, the search-only
``nm:`` keys left out) and ``model.json`` (the model in use). ``score`` blocks (explode keys,
drop blocks larger than the online cap, self-join, distinct pairs) and scores every pair with
Huitong's own comparators and model — on Spark in ``mapInPandas`` with ``--engine spark``
(needs ``pyspark`` and ``huitong`` on the executors), or in this process with
``--engine local`` (the default, for small data and tests; no Spark needed). ``import`` hands
the scored pairs to :func:`huitong.mpi.relink.relink`, which applies the same decisions and
link-state rules as ``huitong mpi relink`` (operators' links and certainly-not decisions
stand), writes the links and rebuilds the golden records.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from huitong.mpi.codec import record_from_json
from huitong.mpi.model import MatchModel, score_pair
from huitong.mpi.service import _MAX_BLOCK, IdentityService
from huitong.mpi.spec import IDENTITY_SPEC
from huitong.store import open_repository

PAIR_COLUMNS = ["a", "b", "probability", "grade"]


def export(db: str, out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    repo = open_repository(db)
    try:
        service = IdentityService(repo, clock=repo.clock, new_id=repo.new_id)
        (out / "model.json").write_text(service.model.to_json(), encoding="utf-8")
        rows = repo.query("SELECT source, record FROM mpi_records ORDER BY source")
        with (out / "records.jsonl").open("w", encoding="utf-8") as f:
            for source, text in rows:
                f.write(json.dumps({"source": source, "record": text}, ensure_ascii=False))
                f.write("\n")
        keys = repo.query("SELECT key, source FROM mpi_keys WHERE substr(key, 1, 3) <> 'nm:'")
        with (out / "keys.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["key", "source"])
            writer.writerows(keys)
    finally:
        repo.close()
    return {"records": len(rows), "keys": len(keys)}


def _score_rows(model_text: str, rows: Iterator[tuple[str, str, str, str]]) -> Iterator[list[Any]]:
    """(a, a's record JSON, b, b's record JSON) → scored pairs above certainly-not."""
    model = MatchModel.from_json(model_text, IDENTITY_SPEC)
    for a, ra, b, rb in rows:
        scored = score_pair(model, record_from_json(ra), record_from_json(rb))
        if scored.grade != "certainly-not":
            yield [a, b, scored.probability, scored.grade]


def score_local(folder: Path) -> int:
    from collections import defaultdict

    records = {}
    with (folder / "records.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            records[row["source"]] = row["record"]
    blocks: dict[str, list[str]] = defaultdict(list)
    with (folder / "keys.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            blocks[row["key"]].append(row["source"])
    pairs = set()
    for members in blocks.values():
        if 2 <= len(members) <= _MAX_BLOCK:
            ordered = sorted(members)
            pairs.update((x, y) for n, x in enumerate(ordered) for y in ordered[n + 1 :])
    model_text = (folder / "model.json").read_text(encoding="utf-8")
    rows = ((a, records[a], b, records[b]) for a, b in sorted(pairs))
    written = 0
    with (folder / "pairs.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PAIR_COLUMNS)
        for out in _score_rows(model_text, rows):
            writer.writerow(out)
            written += 1
    return written


def score_spark(folder: Path) -> None:  # pragma: no cover - needs a Spark installation
    import pandas as pd
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = SparkSession.builder.appName("huitong-mpi-relink").getOrCreate()
    model_text = spark.sparkContext.broadcast((folder / "model.json").read_text("utf-8"))
    keys = spark.read.csv(str(folder / "keys.csv"), header=True)
    small = keys.groupBy("key").count().filter(f"count >= 2 AND count <= {_MAX_BLOCK}")
    keys = keys.join(small.select("key"), "key")
    pairs = (
        keys.alias("x")
        .join(keys.alias("y"), "key")
        .where(F.col("x.source") < F.col("y.source"))
        .select(F.col("x.source").alias("a"), F.col("y.source").alias("b"))
        .distinct()
    )
    records = spark.read.json(str(folder / "records.jsonl"))
    ra = records.select(F.col("source").alias("a"), F.col("record").alias("ra"))
    rb = records.select(F.col("source").alias("b"), F.col("record").alias("rb"))
    joined = pairs.join(ra, "a").join(rb, "b").select("a", "ra", "b", "rb")

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in batches:
            rows = frame[["a", "ra", "b", "rb"]].itertuples(index=False, name=None)
            yield pd.DataFrame(list(_score_rows(model_text.value, rows)), columns=PAIR_COLUMNS)

    schema = "a string, b string, probability double, grade string"
    scored = joined.mapInPandas(score, schema)
    scored.coalesce(1).write.mode("overwrite").csv(str(folder / "pairs_spark"), header=True)


def read_pairs(path: Path) -> Iterator[tuple[str, str, float, str]]:
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            yield row["a"], row["b"], float(row["probability"]), row["grade"]


def import_pairs(db: str, pairs: Path, *, dry_run: bool) -> dict[str, Any]:
    from huitong.mpi.relink import relink

    repo = open_repository(db)
    try:
        service = IdentityService(repo, clock=repo.clock, new_id=repo.new_id)
        return relink(service, dry_run=dry_run, scored=read_pairs(pairs)).to_json()
    finally:
        repo.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("export", "score", "import"))
    ap.add_argument("--db")
    ap.add_argument("--out", "--dir", dest="dir", type=Path, default=Path("mpi_export"))
    ap.add_argument("--engine", choices=("local", "spark"), default="local")
    ap.add_argument("--pairs", type=Path)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    if args.command == "export":
        print(json.dumps(export(args.db, args.dir)))
    elif args.command == "score":
        if args.engine == "spark":
            score_spark(args.dir)
        else:
            print(json.dumps({"pairs": score_local(args.dir)}))
    else:
        print(json.dumps(import_pairs(args.db, args.pairs, dry_run=args.dry_run), indent=1))


if __name__ == "__main__":
    main()
