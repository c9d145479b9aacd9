"""Server secrets: a configured file, or generated on first start and kept in the database.

The key of the share codes' HMAC (:mod:`huitong.access.share_codes`) is one: a share code
has only 31^8 ≈ 8.5·10^11 values, so an unkeyed digest of it in a stolen table is reversed
by trying them all in minutes; keyed, each guess needs the key. ``HUITONG_SHARE_CODE_KEY_FILE``
names a file holding it (kept apart from the database, so a copy of the database alone is
not enough); without one a random 32-byte key is generated on first use and kept in
``access_secrets`` (migration 0013) — convenient, and still enough when only the share-code
table leaks, but not when the whole database does. Several workers starting together keep
one key: the insert does nothing when the row exists and every worker reads the row back.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from huitong.clock import Clock
from huitong.store.repository import Repository

__all__ = ["MIN_SECRET_BYTES", "SHARE_CODE_KEY", "server_secret"]

SHARE_CODE_KEY = "share-code-hmac"
MIN_SECRET_BYTES = 32


def server_secret(repo: Repository, name: str, clock: Clock, *, key_file: str = "") -> bytes:
    """The secret ``name``: the contents of ``key_file`` when given (at least 32 bytes, else
    ValueError with a bilingual message), else the one kept in the database, generated now
    if there is none."""
    if key_file:
        data = Path(key_file).read_bytes().strip()
        if len(data) < MIN_SECRET_BYTES:
            raise ValueError(
                f"{key_file} holds {len(data)} bytes; a key needs at least {MIN_SECRET_BYTES} "
                f"(e.g. `head -c 48 /dev/urandom | base64 > {key_file}`) / "
                f"{key_file} 只有 {len(data)} 字节，密钥至少需要 {MIN_SECRET_BYTES} 字节"
            )
        return data
    rows = repo.query("SELECT secret FROM access_secrets WHERE name = ?", (name,))
    if not rows:
        with repo.transaction() as tx:
            tx.execute(
                "INSERT INTO access_secrets (name, secret, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (name, secrets.token_bytes(32), clock()),
            )
        rows = repo.query("SELECT secret FROM access_secrets WHERE name = ?", (name,))
    return bytes(rows[0][0])
