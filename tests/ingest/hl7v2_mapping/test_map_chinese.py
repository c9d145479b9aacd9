"""Hand-written messages with Chinese content: names, resident ID, phones, GB18030 bytes."""

from __future__ import annotations

import pytest
from v2map_helpers import CTX, FhirClient, only, parse_bytes

from huitong.ingest.hl7v2.mapping import map_message

_MSG = (
    "MSH|^~\\&|HIS|市一院|HIE|区域平台|20260315093000+0800||ADT^A01^ADT_A01|CN0001|P|2.5|||||"
    "CHN|UNICODE UTF-8\r"
    "EVN|A01|20260315093000\r"
    "PID|1||000123^^^市一院^MR~110101199003071234^^^居民身份证^NNCHN||张^伟||19900307|M|||"
    "人民路1号^^杭州市^浙江省^310000^CHN^H^^西湖区||13812345678^PRN^CP~0571-87654321^PRN^PH\r"
    "NK1|1|李^娜|SPO^配偶|||13900001111\r"
    + "|".join(["PV1", "1", "I", "心内科^0301^02^市一院", "", "", "", "D001^王^芳"] + [""] * 11
               + ["V20260315001^^^市一院^VN"] + [""] * 24 + ["20260315090000"]) + "\r"
    "DG1|1||I10^高血压^I10||20260315|A\r"
)


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_chinese_patient(encoding: str) -> None:
    raw = _MSG.replace("UNICODE UTF-8", "GB 18030-2000" if encoding == "gb18030" else
                       "UNICODE UTF-8").encode(encoding)
    result = map_message(parse_bytes(raw), CTX)
    patient = only(result.bundle, "Patient")
    name = patient["name"][0]
    assert name["text"] == "张伟"
    assert name["family"] == "张" and name["given"] == ["伟"]
    ids = {(i["system"], i["value"]) for i in patient["identifier"]}
    assert ("urn:oid:2.16.156.10011.1.3", "110101199003071234") in ids
    assert ("urn:huitong:org:org-1:mrn%3A%E5%B8%82%E4%B8%80%E9%99%A2", "000123") in ids
    assert ("urn:oid:2.16.156.10011.1.3", "110101199003071234") in result.patient_identifiers
    phones = {t["value"]: t.get("use") for t in patient["telecom"]}
    assert phones == {"13812345678": "mobile", "0571-87654321": "home"}
    address = patient["address"][0]
    assert address["text"] == "浙江省杭州市西湖区人民路1号"
    assert (address["state"], address["city"], address["district"]) == ("浙江省", "杭州市",
                                                                           "西湖区")
    assert patient["contact"][0]["name"]["text"] == "李娜"
    encounter = only(result.bundle, "Encounter")
    assert encounter["identifier"][0]["value"] == "V20260315001"
    assert encounter["period"]["start"] == "2026-03-15T09:00:00+08:00"
    assert encounter["participant"][0]["individual"]["display"] == "王芳"
    condition = only(result.bundle, "Condition")
    assert condition["code"]["coding"][0] == {"system": "http://hl7.org/fhir/sid/icd-10",
                                              "code": "I10", "display": "高血压"}


def test_resident_id_key_is_the_mrn_and_posting_finds_the_patient(fhir: FhirClient) -> None:
    bundle = map_message(parse_bytes(_MSG.encode()), CTX).bundle
    put = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert put["request"]["url"].endswith("|000123")
    assert fhir.post_bundle(bundle).status_code == 200
    found = fhir.get("/fhir/Patient?identifier=urn:oid:2.16.156.10011.1.3|110101199003071234")
    assert found.json()["total"] == 1
    assert found.json()["entry"][0]["resource"]["name"][0]["text"] == "张伟"
