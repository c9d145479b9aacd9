"""Signed tree heads ("checkpoints"): size, root and time, signed with Ed25519.

The signed message is UTF-8 text, one field a line, each line ending in ``\\n``::

    huitong-audit-checkpoint/v1      (fixed: domain separation, never reused elsewhere)
    <origin>                         (the log's name, e.g. the platform's base URL)
    <size>                           (decimal number of entries)
    <root>                           (standard base64 of the 32-byte RFC 9162 tree head)
    <timestamp>                      (decimal microseconds since the epoch, UTC)

The signature is Ed25519 (RFC 8032) over those bytes. ``key_id`` is the first 8 bytes of
SHA-256 of the raw public key, hex: it tells a verifier which published key to use after a
rotation, and is not itself trusted. Keys are passed in; this module never reads a key file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from huitong.audit.hashing import HASH_SIZE
from huitong.audit.verdict import Verdict

__all__ = [
    "Checkpoint",
    "SignedCheckpoint",
    "key_id",
    "sign_checkpoint",
    "verify_checkpoint",
]

_HEADER = "huitong-audit-checkpoint/v1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log ``origin`` had ``size`` entries with root ``root`` at
    ``timestamp`` (microseconds since the epoch, from the injected clock)."""

    origin: str
    size: int
    root: bytes
    timestamp: int

    def __post_init__(self) -> None:
        if "\n" in self.origin or not self.origin:
            raise ValueError("a checkpoint origin is one non-empty line")
        if self.size < 0 or len(self.root) != HASH_SIZE:
            raise ValueError("a checkpoint needs a size ≥ 0 and a 32-byte root")

    def body(self) -> bytes:
        """The exact bytes that are signed (see the module docstring)."""
        root = base64.b64encode(self.root).decode("ascii")
        return f"{_HEADER}\n{self.origin}\n{self.size}\n{root}\n{self.timestamp}\n".encode()


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    key_id: str
    signature: bytes

    def to_text(self) -> str:
        """The body, a blank line, then ``<key_id> <base64 signature>``: what the API
        serves and what a store keeps."""
        sig = base64.b64encode(self.signature).decode("ascii")
        return f"{self.checkpoint.body().decode()}\n{self.key_id} {sig}\n"

    @classmethod
    def from_text(cls, text: str) -> SignedCheckpoint:
        """Parse :meth:`to_text` output; ``ValueError`` on anything else."""
        try:
            body, sigline = text.split("\n\n", 1)
            header, origin, size, root, timestamp = body.split("\n")
            kid, sig = sigline.rstrip("\n").split(" ")
            if header != _HEADER:
                raise ValueError(f"not a {_HEADER} checkpoint")
            cp = Checkpoint(
                origin,
                int(size),
                base64.b64decode(root, validate=True),
                int(timestamp),
            )
            return cls(cp, kid, base64.b64decode(sig, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"malformed checkpoint: {exc}") from exc


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:8].hex()


def sign_checkpoint(checkpoint: Checkpoint, private_key: Ed25519PrivateKey) -> SignedCheckpoint:
    """Sign ``checkpoint`` with ``private_key`` (Ed25519, deterministic per RFC 8032)."""
    return SignedCheckpoint(
        checkpoint, key_id(private_key.public_key()), private_key.sign(checkpoint.body())
    )


def verify_checkpoint(signed: SignedCheckpoint, public_key: Ed25519PublicKey) -> Verdict:
    """Was ``signed`` signed by the holder of ``public_key``, unaltered?"""
    if signed.key_id != key_id(public_key):
        return Verdict.failed(
            "unknown-key",
            f"Checkpoint of size {signed.checkpoint.size} names key {signed.key_id}, "
            "which is not the key it is being verified with.",
            f"大小为 {signed.checkpoint.size} 的检查点声明的密钥 {signed.key_id} "
            "不是用于验证的密钥。",
        )
    try:
        public_key.verify(signed.signature, signed.checkpoint.body())
    except InvalidSignature:
        return Verdict.failed(
            "bad-signature",
            f"The signature on the checkpoint of size {signed.checkpoint.size} is invalid: "
            "the checkpoint was altered or not signed by this key.",
            f"大小为 {signed.checkpoint.size} 的检查点签名无效：检查点被篡改，或并非由此密钥签署。",
        )
    return Verdict.passed()
