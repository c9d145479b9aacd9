"""Share codes are stored as an HMAC under a server key (access/secrets.py): a stolen table
gives nothing to try the 31^8 codes against. Codes stored the old way (bare SHA-256) stay
redeemable, once; the key comes from HUITONG_SHARE_CODE_KEY_FILE or is generated once per
database (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from consent_world import World

from huitong.access.secrets import SHARE_CODE_KEY, server_secret
from huitong.access.share_codes import keyed_hash
from huitong.store.repository import Repository


def _stored(repo: Repository, code_id: str) -> str:
    return str(repo.query("SELECT code_hash FROM access_share_codes WHERE id = ?",
                          (code_id,))[0][0])  # fmt: skip


def test_codes_are_stored_keyed(world: World) -> None:
    w = world
    issued = w.api("POST", w.token("pat-pb1"), "share-codes", {}).json()
    code, stored = issued["code"], _stored(w.repo, issued["codeId"])
    key = bytes(w.repo.query("SELECT secret FROM access_secrets WHERE name = ?",
                             (SHARE_CODE_KEY,))[0][0])  # fmt: skip
    assert len(key) == 32
    assert stored == keyed_hash(code, key) and stored.startswith("h1:")
    # what an attacker holding only the table would try: no code's plain digest matches
    assert stored != hashlib.sha256(code.encode()).hexdigest()
    assert stored != keyed_hash(code, b"\0" * 32)
    # the key is made once per database: a second start reads the same one
    assert server_secret(w.repo, SHARE_CODE_KEY, w.clock) == key
    redeemed = w.api("POST", w.token("clin-a"), "share-codes/redeem", {"code": code})
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["patient"] == "pb1"


def test_a_code_stored_before_the_key_is_still_redeemable_once(world: World) -> None:
    w = world
    now = w.clock()
    code = "ABCD2345"
    with w.repo.transaction() as tx:
        tx.execute(
            "INSERT INTO access_share_codes (id, code_hash, patient_id, issued_by, "
            "resource_types, labels, access_us, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("legacy-1", hashlib.sha256(code.encode()).hexdigest(), "pb1", "someone", "[]",
             "[]", 3_600_000_000, now, now + 3_600_000_000),
        )  # fmt: skip
    first = w.api("POST", w.token("clin-a"), "share-codes/redeem", {"code": "abcd-2345"})
    assert first.status_code == 200, first.text
    assert first.json()["patient"] == "pb1"
    again = w.api("POST", w.token("clin-a"), "share-codes/redeem", {"code": code})
    assert again.status_code == 409
    assert "already been used" in again.text and "已被使用" in again.text


def test_the_key_file_setting(repo: Repository, tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(b"too short")
    with pytest.raises(ValueError, match="at least 32") as err:
        World(repo, share_code_key=str(short))
    assert "密钥至少需要" in str(err.value)
    good = tmp_path / "share.key"
    good.write_bytes(b"k" * 48 + b"\n")
    w = World(repo, share_code_key=str(good))
    try:
        from huitong.access import Role

        w.account("pat-pb1", Role.PATIENT, patient_ids=("pb1",))
        issued = w.api("POST", w.token("pat-pb1"), "share-codes", {}).json()
        assert _stored(repo, issued["codeId"]) == keyed_hash(issued["code"], b"k" * 48)
        # the file's key is used; none is generated in the database
        assert repo.query("SELECT COUNT(*) FROM access_secrets")[0][0] == 0
    finally:
        w.close()
