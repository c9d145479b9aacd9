"""CSV feed conversion benchmark: a generated blood-pressure clinic export (Chinese headers,
GB18030, Chinese dates) through the declarative mapping into transaction Bundles.

    python bench/feeds_csv.py [--rows 100000] [--batch 500] [--encoding gb18030] [--no-validate]

Measures conversion alone (read, decode, parse, map, validate every resource, build the
Bundles), the part the feeds package owns; the repository write is measured with the channel
runtime. Prints rows/s on the wall clock and per CPU second (the machine is shared),
entries/s, and the peak Python heap of a second pass over a tenth of the file (tracemalloc
would slow the timed run).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import time
import tracemalloc

from huitong.ingest.feeds import convert_csv, parse_mapping_toml

MAPPING = """
[feed]
name = "bench-bp"
organization = { system = "urn:huitong:org-code", value = "C01" }
batch_size = BATCH

[[resource]]
key = "patient"
type = "Patient"
mode = "update"
identifier = { system = "urn:huitong:mrn:C01", value = "{病历号}" }
  [[resource.field]]
  element = "name[0].text"
  source = "姓名"
  required = true
  [[resource.field]]
  element = "gender"
  source = "性别"
  map = { "男" = "male", "女" = "female" }
  [[resource.field]]
  element = "birthDate"
  source = "出生日期"
  formats = ["%Y年%m月%d日"]
  [[resource.field]]
  element = "managingOrganization"
  target = "organization"

[[resource]]
key = "bp"
type = "Observation"
identifier = { system = "urn:huitong:csv:C01:obs", value = "{记录号}" }
  [[resource.field]]
  element = "status"
  value = "final"
  [[resource.field]]
  element = "category[0].coding[0]"
  value = { system = "http://terminology.hl7.org/CodeSystem/observation-category", \
code = "vital-signs" }
  [[resource.field]]
  element = "code.coding[0]"
  value = { system = "http://loinc.org", code = "85354-9" }
  [[resource.field]]
  element = "subject"
  target = "patient"
  [[resource.field]]
  element = "effectiveDateTime"
  source = "测量时间"
  formats = ["%Y-%m-%d %H:%M"]
  [[resource.field]]
  element = "component[0].code.coding[0]"
  value = { system = "http://loinc.org", code = "8480-6" }
  [[resource.field]]
  element = "component[0].valueQuantity"
  source = "收缩压"
  unit = "mm[Hg]"
  [[resource.field]]
  element = "component[1].code.coding[0]"
  value = { system = "http://loinc.org", code = "8462-4" }
  [[resource.field]]
  element = "component[1].valueQuantity"
  source = "舒张压"
  unit = "mm[Hg]"
"""
HEADER = "记录号,病历号,姓名,性别,出生日期,收缩压,舒张压,测量时间\n"


def generate(rows: int, encoding: str) -> bytes:
    rnd = random.Random(7)
    out = io.StringIO()
    out.write(HEADER)
    for i in range(rows):
        patient = rnd.randrange(rows // 4 + 1)
        out.write(
            f"R{i:07d},M{patient:06d},患者{patient},{'男' if patient % 2 else '女'},"
            f"{1930 + patient % 70}年{1 + patient % 12}月{1 + patient % 28}日,"
            f"{rnd.randint(95, 180)},{rnd.randint(55, 110)},"
            f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}\n"
        )
    return out.getvalue().encode(encoding)


def convert(data: bytes, batch: int, validate: bool = True) -> tuple[int, int, int, int]:
    mapping = parse_mapping_toml(MAPPING.replace("BATCH", str(batch)))
    rows = entries = problems = batches = 0
    for conv in convert_csv(io.BytesIO(data), mapping, validate=validate):
        rows += conv.records
        entries += len(conv.entries)
        problems += len(conv.problems)
        batches += 1
    return rows, entries, problems, batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--encoding", default="gb18030")
    ap.add_argument("--no-validate", action="store_true",
                    help="leave FHIR validation to the write (convert_csv(validate=False))")
    args = ap.parse_args()
    data = generate(args.rows, args.encoding)
    start, cpu = time.perf_counter(), time.process_time()
    rows, entries, problems, batches = convert(data, args.batch, not args.no_validate)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    tracemalloc.start()
    convert(data[: len(data) // 10], args.batch)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({
        "rows": rows, "bytes": len(data), "encoding": args.encoding, "batch": args.batch,
        "validate": not args.no_validate,
        "batches": batches, "entries": entries, "problems": problems,
        "seconds": round(elapsed, 2), "cpu_seconds": round(cpu, 2),
        "rows_per_s": round(rows / elapsed), "rows_per_cpu_s": round(rows / cpu),
        "entries_per_s": round(entries / elapsed),
        "peak_heap_mib_tenth_of_file": round(peak / 2**20, 1),
        "python": platform.python_version(),
    }, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
