"""Demographic search (PDQm-style) through the identity service and ``/api/mpi/search``, on
SQLite and PostgreSQL: a name in characters, traditional characters, pinyin in either order
or a homophone; resident ID (18 or 15 digits), phone, any identifier; birth-date narrowing."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from server_helpers import Client
from test_identity_service import LI, ZHANG, patient, put

from huitong.config import Settings
from huitong.mpi.service import IdentityService
from huitong.server import create_app


@pytest.fixture
def mpi(repo):
    ids = (f"g{i}" for i in itertools.count())
    service = IdentityService(repo, clock=repo.clock, new_id=lambda: next(ids))
    service.install()
    put(repo, patient("a1", "county", rid=ZHANG, phone="13800138000", mrn="M-1"),
        patient("b1", "clinic", name="章伟", rid=ZHANG),
        patient("x1", "clinic", name="李娜", birth="1985-07-09", rid=LI, gender="female"),
        patient("z9", "county", name="张伟", birth="2001-11-30", phone="13911112222"))
    return service


def _found(hits):
    return {(h["golden"], h["matchedBy"]) for h in hits}


@pytest.mark.parametrize(("query", "kind"), [
    ("张伟", "name"),
    ("張偉", "name"),            # traditional characters
    ("zhang wei", "name-pinyin"),
    ("Wei ZHANG", "name-pinyin"),  # Latin script, given name first
    ("zang wei", "name-homophone"),  # southern zh/z merge
])  # fmt: skip
def test_search_by_name_in_characters_pinyin_and_homophones(mpi, query, kind):
    zhang, other_zhang = mpi.golden_of("a1"), mpi.golden_of("z9")
    hits = mpi.search(query)
    assert {h["golden"] for h in hits} == {f"Patient/{zhang}", f"Patient/{other_zhang}"}
    mine = next(h for h in hits if h["golden"] == f"Patient/{zhang}")
    assert mine["matchedBy"] == kind
    assert sorted(mine["sources"]) == ["Patient/a1", "Patient/b1"]  # 章伟 is a homophone
    assert mine["birthDate"] == "1970-03-05" and mine["gender"] == "male"


def test_birth_date_narrows_a_name_search_with_typo_tolerance(mpi):
    zhang = f"Patient/{mpi.golden_of('a1')}"
    assert [h["golden"] for h in mpi.search("张伟", birth_date="1970-03-05")] == [zhang]
    assert [h["golden"] for h in mpi.search("张伟", birth_date="1970-05-03")] == [zhang]  # swap
    assert mpi.search("张伟", birth_date="1990-01-01") == []


@pytest.mark.parametrize(("query", "kind", "who"), [
    (ZHANG, "resident-id", "a1"),
    (ZHANG[:6] + ZHANG[8:17], "resident-id", "a1"),  # the 15-digit form of the same number
    ("+86 138-0013-8000", "phone", "a1"),
    ("urn:huitong:org:county:mrn|M-1", "identifier", "a1"),
    (f"urn:oid:2.16.156.10011.1.3|{LI}", "resident-id", "x1"),
])  # fmt: skip
def test_search_by_identifiers(mpi, query, kind, who):
    hits = mpi.search(query)
    assert _found(hits) == {(f"Patient/{mpi.golden_of(who)}", kind)}


def test_search_finds_nothing_for_unknown_or_empty_text(mpi):
    assert mpi.search("") == []
    assert mpi.search("王小明") == []
    assert mpi.search("13000000000") == []


def test_search_api_is_bilingual_and_bounded(repo, mpi):
    settings = Settings.from_env({}, database_url="unused", auth="off",
                                 base_url="http://hie.test/fhir")
    client = Client(create_app(repo, settings))
    try:
        ok = client.get("/api/mpi/search", params={"q": "zhang wei", "_count": "1"})
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["total"] == 1 and body["items"][0]["matchedBy"] in ("name-pinyin",)
        missing = client.get("/api/mpi/search")
        assert missing.status_code == 400 and "缺少" in missing.text
    finally:
        client.close()
