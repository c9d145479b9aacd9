"""``huitong ingest csv|json|device|dicom`` (the commands, invoked directly until the lead
registers them on the ``ingest`` group)."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner
from feed_intake_helpers import MAPPING_DIR, MRN, ORG, RESIDENT, bp_row, csv_bytes

from huitong.ingest.channels import channel_from_config
from huitong.ingest.cli_commands import ingest_csv, ingest_device, ingest_dicom, ingest_json
from huitong.store import open_repository


@pytest.fixture
def db(engine_url):
    from huitong.cli import _ingest_service, _settings

    service = _ingest_service(_settings(engine_url))
    for cid, fmt, mapping in (
        ("bp-csv", "csv", {"file": str(MAPPING_DIR / "community_bp.toml")}),
        ("bp-json", "json", {"file": str(MAPPING_DIR / "community_bp.toml")}),
        ("dev", "device", {}), ("pacs", "dicom", {}),
    ):
        service.put_channel(channel_from_config({"id": cid, "organization": ORG,
                                                 "transport": "file", "format": fmt,
                                                 "mapping": mapping}))
    with service.repo.transaction() as tx:
        tx.create({"resourceType": "Organization", "identifier": [
            {"system": "urn:huitong:org-code", "value": "C01"}]})
    service.repo.close()
    return engine_url


def _count(url: str, query: str) -> int:
    from huitong.fhir.search.parse import parse_search

    repo = open_repository(url)
    try:
        name, _, value = query.partition("=")
        return len(repo.search(parse_search("Patient", [(name, value)])).matches)
    finally:
        repo.close()


def test_csv_and_json_commands(db, tmp_path):
    f = tmp_path / "随访.csv"
    f.write_bytes(csv_bytes([bp_row(1), bp_row(2, sbp="x")], "gb18030"))
    runner = CliRunner()
    result = runner.invoke(ingest_csv, [str(f), "--channel", "bp-csv", "--db", db])
    assert result.exit_code == 0, result.output
    assert "records 2, accepted 1" in result.output and "记录 2，接受 1" in result.output
    assert "bad-number" in result.output and "row=2" in result.output
    assert _count(db, f"identifier={MRN}|M0001") == 1
    again = runner.invoke(ingest_csv, [str(f), "--channel", "bp-csv", "--db", db])
    assert again.exit_code == 0 and "duplicate" in again.output
    j = tmp_path / "bp.json"
    j.write_bytes(orjson.dumps([{"随访编号": "J1", "病历号": "M0100", "身份证号": "1",
                                 "姓名": "张三", "性别": "女", "出生日期": "1970-01-02",
                                 "收缩压": "120", "舒张压": "80", "随访时间": "2024-03-05 08:30"}]))
    result = runner.invoke(ingest_json, [str(j), "--channel", "bp-json", "--db", db])
    assert result.exit_code == 0, result.output
    assert _count(db, f"identifier={MRN}|M0100") == 1
    wrong = runner.invoke(ingest_json, [str(j), "--channel", "nope", "--db", db])
    assert wrong.exit_code == 1 and "没有" in wrong.output


def test_device_and_dicom_commands(db, tmp_path):
    repo = open_repository(db)
    with repo.transaction() as tx:
        tx.create({"resourceType": "Patient", "identifier": [
            {"system": RESIDENT, "value": "110101196003050012"},
            {"system": "urn:huitong:org:c01:mrn", "value": "P0001"}]})
    repo.close()
    payload = tmp_path / "reading.json"
    payload.write_bytes(orjson.dumps({
        "device": {"serial": "BPM-7"}, "patient": {"system": RESIDENT,
                                                   "value": "110101196003050012"},
        "time": "2024-03-05T08:30:00+08:00",
        "measurements": [{"type": "heart-rate", "value": 70, "unit": "bpm"}]}))
    runner = CliRunner()
    result = runner.invoke(ingest_device, [str(payload), "--channel", "dev", "--db", db])
    assert result.exit_code == 0, result.output
    assert "created" in result.output

    from test_feed_devices_dicom import dicom_file

    folder = tmp_path / "study"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.dcm").write_bytes(dicom_file(1, i + 1))
    (folder / "notes.txt").write_text("not DICOM")
    result = runner.invoke(ingest_dicom, [str(folder), "--channel", "pacs", "--db", db])
    assert result.exit_code == 0, result.output
    assert "not-dicom" in result.output
    repo = open_repository(db)
    try:
        from huitong.fhir.search.parse import parse_search

        [study] = repo.search(parse_search("ImagingStudy", [])).matches
        assert study.resource["numberOfInstances"] == 3
    finally:
        repo.close()
