"""Rotating the checkpoint signing key (``huitong audit rotate-key``): the tree so far is signed
one last time with the old key, later checkpoints with the new one, the old private key is
erased and its public key stays published; verification checks each checkpoint against the
key it names, and still catches tampering (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_helpers import BASE, StepClock
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

import huitong.audit.service as audit_service
from huitong.audit import AccessBasis, Actor, BasisKind, key_id, verify_checkpoint
from huitong.audit.service import AuditService
from huitong.cli import main
from huitong.config import Settings
from huitong.server import create_app
from huitong.store import Repository, open_repository

ACTOR = Actor(role="auditor", user="u1")
BASIS = AccessBasis(BasisKind.ROLE, "auditor-audit-log")


def _add(service: AuditService, n: int) -> None:
    for _ in range(n):
        service.record_event("audit-read", actor=ACTOR, basis=BASIS)


def test_rotation_keeps_every_checkpoint_verifiable(repo: Repository) -> None:
    service = AuditService(repo, clock=StepClock(), origin=BASE)
    _add(service, 3)
    first = service.checkpoint()
    _add(service, 2)  # not yet checkpointed: rotation signs them with the old key first
    old, new = service.rotate_key()
    assert old == first.key_id and new != old
    assert [c.checkpoint.size for c in service.checkpoints()] == [3, 5]
    assert all(c.key_id == old for c in service.checkpoints())
    _add(service, 4)
    latest = service.checkpoint()
    assert latest.key_id == new and latest.checkpoint.size == 9
    keys = service.public_keys()
    assert set(keys) == {old, new}
    assert all(verify_checkpoint(c, keys[c.key_id]) for c in service.checkpoints())
    # the old private key is gone; its public key and the time it was retired stay
    rows = {r[0]: r[1:] for r in repo.query(
        "SELECT key_id, private_key, retired FROM audit_keys")}  # fmt: skip
    assert rows[old][0] is None and rows[old][1] is not None
    assert rows[new][0] is not None and rows[new][1] is None
    listed = {k["keyId"]: k for k in service.published_keys()}
    assert listed[new]["current"] and not listed[old]["current"]
    assert "BEGIN PUBLIC KEY" in listed[old]["publicKey"]
    report = service.verify()
    assert report.ok and report.checkpoints_checked == 3, report.codes()
    # trusting only the new key: the old checkpoints are named, not silently accepted
    only_new = service.verify(keys[new])
    assert set(only_new.codes()) == {"checkpoint-unknown-key"}
    assert service.verify([keys[old], keys[new]]).ok


def test_tampering_is_still_caught_under_the_old_key(repo: Repository) -> None:
    service = AuditService(repo, clock=StepClock(), origin=BASE)
    _add(service, 4)
    service.checkpoint()
    service.rotate_key()
    _add(service, 1)
    service.checkpoint()
    body = repo.query("SELECT body FROM audit_checkpoints WHERE size = 4")[0][0]
    forged = body.replace("\n4\n", "\n3\n", 1)
    with repo.transaction() as tx:
        tx.execute("UPDATE audit_checkpoints SET body = ? WHERE size = 4", (forged,))
    assert "checkpoint-bad-signature" in service.verify().codes()


def test_another_process_signs_with_the_new_key(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = AuditService(repo, clock=StepClock(), origin=BASE)
    _add(server, 2)
    server.checkpoint()
    _, new = AuditService(repo, clock=StepClock(), origin=BASE).rotate_key()  # the CLI
    monkeypatch.setattr(audit_service, "_KEY_RECHECK_SECONDS", 0.0)
    _add(server, 1)
    assert server.checkpoint().key_id == new


def test_cli_rotate_key(engine_url: str, tmp_path: Path) -> None:
    repo = open_repository(engine_url)
    try:
        service = AuditService(repo, origin=BASE)  # the real clock, as the CLI's
        _add(service, 2)
        service.checkpoint()
        runner = CliRunner(env={"HUITONG_BASE_URL": BASE})
        done = runner.invoke(main, ["audit", "rotate-key", "--db", engine_url])
        assert done.exit_code == 0, done.output
        assert "New checkpoint signing key" in done.output and "已启用新的检查点签名密钥" in done.output
        _add(service, 1)
        cp = runner.invoke(main, ["audit", "checkpoint", "--db", engine_url])
        assert cp.exit_code == 0, cp.output
        ok = runner.invoke(main, ["audit", "verify", "--db", engine_url])
        assert ok.exit_code == 0, ok.output
        # the published keys, given explicitly: both needed
        paths = []
        for kid, pub in AuditService(repo, origin=BASE).public_keys().items():
            path = tmp_path / f"{kid}.pem"
            path.write_bytes(pub.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
            paths += ["--public-key", str(path)]
        assert runner.invoke(main, ["audit", "verify", "--db", engine_url, *paths]).exit_code == 0
        partial = runner.invoke(main, ["audit", "verify", "--db", engine_url, *paths[:2]])
        assert partial.exit_code == 1
        # a key from a file is replaced in the file, not rotated here
        key_file = tmp_path / "audit.pem"
        key_file.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))  # fmt: skip
        refused = CliRunner(env={"HUITONG_BASE_URL": BASE,
                                 "HUITONG_AUDIT_SIGNING_KEY": str(key_file)}).invoke(
            main, ["audit", "rotate-key", "--db", engine_url])  # fmt: skip
        assert refused.exit_code == 2
        assert "HUITONG_AUDIT_SIGNING_KEY" in refused.output and "请将新密钥写入该文件" in refused.output
    finally:
        repo.close()


def test_keys_are_published(repo: Repository) -> None:
    import asyncio

    import httpx

    settings = Settings.from_env({}, database_url="unused", auth="off", mpi="off",
                                 quality="off", base_url=BASE)  # fmt: skip
    app = create_app(repo, settings, clock=StepClock())
    service = AuditService(repo, clock=StepClock(), origin=BASE)
    _add(service, 1)
    old, new = service.rotate_key()

    async def get(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://hie.test") as client:  # fmt: skip
            return await client.get(path)

    body = asyncio.run(get("/api/audit/keys")).json()
    by_id = {k["keyId"]: k for k in body["keys"]}
    assert set(by_id) == {old, new}
    assert by_id[new]["current"] and by_id[old]["retired"] and not by_id[new]["retired"]
    cp = asyncio.run(get("/api/audit/checkpoint")).json()
    assert cp["keyId"] in by_id
    assert key_id(service.public_keys()[cp["keyId"]]) == cp["keyId"]
