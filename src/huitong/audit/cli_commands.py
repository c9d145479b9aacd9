"""``huitong audit …``: verify the audit log, issue a signed checkpoint.

Registered on the main command with ``main.add_command(audit_cli_group())``. Messages are in
English and Simplified Chinese; nothing an entry contains is printed, only positions, counts
and hashes.

    huitong audit verify [--db URL] [--public-key key.pem]…  exit 1 when tampering is found
    huitong audit checkpoint [--db URL]                      sign the current tree head
    huitong audit rotate-key [--db URL]                      a new checkpoint signing key
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from huitong.cli_support import DB_OPTION, fail, open_database

__all__ = ["audit_cli_group"]

_DB = DB_OPTION


def _fail(en: str, zh: str) -> None:
    fail(en, zh, 2)  # 1 means "verified, and tampering found"


def _run(db_url: str | None, work: Callable[[Any], Any]) -> Any:
    from huitong.audit.service import AuditService

    settings, repo = open_database(db_url, code=2)
    try:
        return work(AuditService(repo, origin=settings.base_url or "huitong",
                                 signing_key_file=settings.audit_signing_key))  # fmt: skip
    finally:
        repo.close()


def audit_cli_group() -> click.Group:
    """The ``audit`` command group."""

    @click.group("audit")
    def audit() -> None:
        """The audit log: verification, checkpoints / 审计日志：验证与检查点."""

    @audit.command("verify")
    @_DB
    @click.option(
        "--public-key",
        "public_keys",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False),
        help="A published checkpoint key (PEM) to trust; repeat it for every key the log "
        "used (default: every key the server recorded) / 用于验证检查点的已公布公钥（PEM），"
        "日志用过的每个密钥各给一次（默认使用服务器记录的全部密钥）.",
    )
    def verify(db_url: str | None, public_keys: tuple[str, ...]) -> None:
        """Recompute the Merkle tree from every entry row and check it against the stored
        tree and each signed checkpoint (against the key it names); exit status 1 on any
        tampering.
        从所有审计记录重新计算 Merkle 树，并与存储的树及每个已签名检查点（用其声明的密钥）核对；
        发现篡改时退出码为 1。"""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        key = None
        if public_keys:
            key = []
            for path in public_keys:
                loaded = load_pem_public_key(Path(path).read_bytes())
                if not isinstance(loaded, Ed25519PublicKey):
                    _fail(f"{path} is not an Ed25519 public key.",
                          f"{path} 不是 Ed25519 公钥。")  # fmt: skip
                key.append(loaded)

        def work(service: Any) -> tuple[Any, int]:
            return service.verify(key), service.unsequenced()

        report, waiting = _run(db_url, work)
        click.echo(report.text("en"))
        click.echo(report.text("zh"))
        if waiting:
            click.echo(f"{waiting} committed entries are not yet sequenced into the tree "
                       f"(the server does so within a second).\n"
                       f"另有 {waiting} 条已提交的记录尚未排入树中"
                       "（服务器会在一秒内完成）。")  # fmt: skip
        sys.exit(0 if report.ok else 1)

    @audit.command("checkpoint")
    @_DB
    def checkpoint(db_url: str | None) -> None:
        """Sequence committed entries and sign the current tree head.
        将已提交的记录排入树中并签署当前树头。"""
        signed = _run(db_url, lambda service: service.checkpoint())
        c = signed.checkpoint
        click.echo(f"Checkpoint signed: {c.size} entries, root {c.root.hex()}, key "
                   f"{signed.key_id}.\n已签署检查点：共 {c.size} 条记录，根哈希 {c.root.hex()}，"
                   f"密钥 {signed.key_id}。")  # fmt: skip
        click.echo(signed.to_text(), nl=False)

    @audit.command("rotate-key")
    @_DB
    def rotate_key(db_url: str | None) -> None:
        """Sign the tree so far with the current checkpoint key one last time, then make a
        new key for the checkpoints that follow; the old public key stays published.
        用当前检查点密钥最后签署一次现有的树，然后生成新密钥签署此后的检查点；旧公钥继续公布。"""

        def work(service: Any) -> tuple[str, str]:
            try:
                return service.rotate_key()  # type: ignore[no-any-return]
            except ValueError as exc:
                en, _, zh = str(exc).partition(" / ")
                _fail(en, zh or en)
                raise  # unreachable: _fail exits

        old, new = _run(db_url, work)
        click.echo(f"New checkpoint signing key {new}; key {old} is retired (its public key "
                   f"stays published, to verify the checkpoints it signed).\n"
                   f"已启用新的检查点签名密钥 {new}；密钥 {old} 已停用"
                   "（其公钥继续公布，用于验证它签署过的检查点）。")  # fmt: skip

    return audit
