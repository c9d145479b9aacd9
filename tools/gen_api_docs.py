"""Write docs/api.md from the server's own tables (routes, operations, search parameters).

tests/test_docs.py fails when the file differs from what this script would write, so the
API reference cannot drift from the code.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from huitong.fhir.definitions import FHIR_VERSION, resource_types
from huitong.fhir.search.params import supported_params
from huitong.server.operations import OPERATIONS
from huitong.server.routing import ROUTES

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"

PROSE = """\
## Formats and headers

- JSON only: `application/fhir+json` (default) and `application/json`; `_format=json`;
  `_pretty=true`. XML requested → 406; an XML body → 415. All failures are OperationOutcomes.
- Bodies over `HUITONG_MAX_BODY_BYTES` → 413. Malformed JSON → 400. Structural validation on
  every write (elements, types, cardinality, required elements, primitive formats, reference
  syntax, `resourceType` versus URL) → 400 with `expression` naming the element.
- `ETag` (`W/"n"`), `Location`, `Last-Modified`, `meta.versionId`, `meta.lastUpdated` on every
  write and read; `If-Match` (412 on conflict), `If-None-Exist` (conditional create),
  `If-None-Match` (304), `Prefer: return=minimal|representation|OperationOutcome`,
  `Prefer: handling=strict|lenient` (unknown search parameters: 400 unless lenient).
- Deletes are soft: a read of a deleted resource answers 410 and the delete is in history.
- An update (PUT, PATCH, a transaction entry) that changes nothing but `meta.versionId` /
  `meta.lastUpdated` makes no new version: the answer is 200 with the current version and
  its `ETag` (as HAPI FHIR does). A tag, profile or security label is content and does make
  one; so does the same content after a delete.

## Search

- Parameter types: string, token, reference, date, number, quantity, uri, composite.
- Prefixes `eq ne gt lt ge le sa eb ap` on number, date and quantity.
- Modifiers: `:exact :contains` (string), `:text :not :of-type :identifier` (token /
  reference), `:above :below` (uri), `:[Type]` (reference), `:missing` (all).
- Chaining (`subject:Patient.name=…`, several levels) and reverse chaining
  (`_has:Observation:patient:code=…`, nested).
- `_include` / `_revinclude` (`Type:param[:Target]`, `*`, `:iterate`), `_sort` (several keys,
  `-` descending), `_count` (0 = count only), `_offset` (paging; links are stable), `_total`
  (`none`, `estimate`, `accurate`), `_summary`, `_elements`, `_id`, `_lastUpdated`, `_tag`,
  `_profile`, `_security`, `_source`, `_list`; `POST …/_search`; system search (`/fhir?…`);
  compartment search (`Patient/{id}/Observation`, `Patient/{id}/*`).
- `Bundle.total`: without `_total` the server gives an estimate, which is exact unless
  more than 1,000 resources match past the requested page: the count stops there, and
  PostgreSQL then reports its planner's estimate (never less than what was counted; SQLite
  keeps counting). Counting millions of matches would cost more than the page itself.
  `_total=accurate` and `_summary=count` always count every match; `_total=none` omits it.

## Bundles

`POST /fhir` with a `batch` or `transaction` Bundle: processing order DELETE, POST,
PUT/PATCH, GET; `urn:uuid:` full URLs and conditional references (`Patient?identifier=…`)
resolved inside the bundle; `ifNoneExist`, `ifMatch`; transactions all-or-nothing (the
failing entry is named in the OperationOutcome `expression`); batch entries independent with
per-entry `response` and `outcome`.
"""


def render() -> str:
    lines = [
        "# FHIR API reference",
        "",
        f"FHIR R{FHIR_VERSION[0]} ({FHIR_VERSION}), base URL `/fhir`. Generated from the server's "
        "routing table, operation registry and search-parameter registry by "
        "`tools/gen_api_docs.py`; a test fails when this page and the code disagree. The same "
        "tables produce `GET /fhir/metadata` (CapabilityStatement) and `/fhir/openapi.json`.",
        "",
        "## Interactions",
        "",
        "| method | path | interaction | what it does |",
        "|---|---|---|---|",
    ]
    for route in ROUTES:
        path = "/fhir" + "".join("/" + p for p in route.pattern)
        for method, it in route.methods.items():
            lines.append(f"| {method} | `{path}` | {', '.join(it.codes)} | {it.summary} |")
    lines += ["", "## Operations", "", "| operation | levels | types | what it does |",
              "|---|---|---|---|"]
    for op in OPERATIONS:
        types = ", ".join(sorted(op.types)) if op.types else "all"
        lines.append(
            f"| [`${op.name}`]({op.definition}) | {', '.join(sorted(op.levels))} | {types} "
            f"| {op.summary} |"
        )
    lines += ["", PROSE, "## Search parameters per resource type", "",
              f"All {len(resource_types())} R4 resource types are accepted and searchable. "
              "Counts by parameter type (from the official R4 registry; `near` and the other "
              "`special` parameters that need geographic or full-text search are not supported "
              "and not advertised):", "",
              "| resource type | parameters | by type |", "|---|---|---|"]
    for rtype in sorted(resource_types()):
        params = supported_params(rtype)
        by_type = Counter(p.type for p in params)
        detail = ", ".join(f"{t} {n}" for t, n in sorted(by_type.items()))
        lines.append(f"| {rtype} | {sum(by_type.values())} | {detail} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC}")
