"""What the server advertises, and the ``huitong terminology`` commands on a database."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from term_server_helpers import DATA, Client

from huitong.fhir.search.parse import parse_search
from huitong.server.operations import OPERATIONS
from huitong.store import open_repository
from huitong.terminology.cli import terminology_cli_group
from huitong.terminology.loaders import ATC_URL

EXPECTED = {
    "CodeSystem": {"lookup": "CodeSystem-lookup", "validate-code": "CodeSystem-validate-code",
                   "subsumes": "CodeSystem-subsumes"},
    "ValueSet": {"expand": "ValueSet-expand", "validate-code": "ValueSet-validate-code"},
    "ConceptMap": {"translate": "ConceptMap-translate"},
}


def test_capability_statement_lists_the_operations(client: Client) -> None:
    cs = client.get("/fhir/metadata").json()
    by_type = {r["type"]: r for r in cs["rest"][0]["resource"]}
    for rtype, ops in EXPECTED.items():
        listed = {o["name"]: o["definition"] for o in by_type[rtype].get("operation", [])}
        for name, definition in ops.items():
            assert listed[name] == f"http://hl7.org/fhir/OperationDefinition/{definition}"
    patient_ops = {o["name"] for o in by_type["Patient"].get("operation", [])}
    assert not patient_ops & {"lookup", "expand", "translate", "subsumes"}


def test_openapi_has_a_path_per_type(client: Client) -> None:
    paths = client.get("/fhir/openapi.json").json()["paths"]
    assert "/CodeSystem/$validate-code" in paths and "/ValueSet/$validate-code" in paths
    assert "/ValueSet/{id}/$expand" in paths


def test_registry_has_each_operation_once() -> None:
    keys = [(op.name, t) for op in OPERATIONS for t in sorted(op.types or ())]
    assert len(keys) == len(set(keys))


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'term.db'}"


def test_cli_load_stores_and_keeps_versions(tmp_path: Path) -> None:
    runner = CliRunner()
    group = terminology_cli_group()
    atc = str(DATA / "atc_ddd.csv")
    for version in ("2024", "2025", "2025"):
        result = runner.invoke(group, ["load", "atc", atc, "--version", version,
                                       "--db", _db(tmp_path)])
        assert result.exit_code == 0, result.output
        assert "已加载" in result.output and "CodeSystem/" in result.output
    repo = open_repository(_db(tmp_path))
    try:
        page = repo.search(parse_search("CodeSystem", [("url", ATC_URL)]))
        versions = sorted((m.resource["version"], m.version_id) for m in page.matches)
    finally:
        repo.close()
    # The 2025 reload found the same content: kept as it was, no second version.
    assert versions == [("2024", 1), ("2025", 1)]
    listed = runner.invoke(group, ["list", "--db", _db(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert listed.output.count(ATC_URL) == 2 and "代码系统" in listed.output


def test_cli_list_on_an_empty_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(terminology_cli_group(), ["list", "--db", _db(tmp_path)])
    assert result.exit_code == 0 and "尚未保存" in result.output


def test_cli_bad_database_url_is_bilingual(tmp_path: Path) -> None:
    result = CliRunner().invoke(terminology_cli_group(), [
        "load", "atc", str(DATA / "atc_ddd.csv"), "--version", "1", "--db", "nosuch://x"])
    assert result.exit_code == 1 and "无法打开数据库" in result.output
