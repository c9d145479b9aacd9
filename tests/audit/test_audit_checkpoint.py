"""Signed tree heads: Ed25519 over a documented text body."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from huitong.audit import Checkpoint, SignedCheckpoint, key_id, sign_checkpoint, verify_checkpoint

# A fixed test key (RFC 8032 §7.1 TEST 1 secret), so signatures are reproducible.
SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
KEY = Ed25519PrivateKey.from_private_bytes(SECRET)
ROOT = bytes(range(32))


def test_body_is_the_documented_text() -> None:
    cp = Checkpoint("https://region.example/audit", 42, ROOT, 1_700_000_000_000_000)
    root = base64.b64encode(ROOT).decode()
    assert (
        cp.body()
        == (
            f"huitong-audit-checkpoint/v1\nhttps://region.example/audit\n42\n{root}\n"
            "1700000000000000\n"
        ).encode()
    )


def test_sign_verify_and_text_round_trip() -> None:
    cp = Checkpoint("huitong-test", 7, ROOT, 5)
    signed = sign_checkpoint(cp, KEY)
    assert signed.key_id == key_id(KEY.public_key()) and len(signed.key_id) == 16
    assert sign_checkpoint(cp, KEY).signature == signed.signature  # deterministic
    assert verify_checkpoint(signed, KEY.public_key())
    again = SignedCheckpoint.from_text(signed.to_text())
    assert again == signed
    assert verify_checkpoint(again, KEY.public_key())


@pytest.mark.parametrize(
    "change",
    [
        {"size": 8},
        {"root": bytes(32)},
        {"timestamp": 6},
        {"origin": "elsewhere"},
    ],
)
def test_any_edit_breaks_the_signature(change: dict[str, object]) -> None:
    signed = sign_checkpoint(Checkpoint("huitong-test", 7, ROOT, 5), KEY)
    forged = dataclasses.replace(
        signed, checkpoint=dataclasses.replace(signed.checkpoint, **change)
    )
    verdict = verify_checkpoint(forged, KEY.public_key())
    assert verdict.code == "bad-signature" and "签名无效" in verdict.zh


def test_another_key_is_named_as_such() -> None:
    signed = sign_checkpoint(Checkpoint("huitong-test", 7, ROOT, 5), KEY)
    other = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    assert verify_checkpoint(signed, other).code == "unknown-key"
    # a forger who also rewrites the key id still fails on the signature
    relabelled = dataclasses.replace(signed, key_id=key_id(other))
    assert verify_checkpoint(relabelled, other).code == "bad-signature"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "huitong-audit-checkpoint/v2\nx\n1\nAAAA\n1\n\nabc AAAA\n",
        "huitong-audit-checkpoint/v1\nx\none\nAAAA\n1\n\nabc AAAA\n",
        "huitong-audit-checkpoint/v1\nx\n1\n!!!\n1\n\nabc AAAA\n",
        "huitong-audit-checkpoint/v1\nx\n1\nAAAA\n1\n\nabc AAAA\n",  # root not 32 bytes
    ],
)
def test_malformed_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="malformed checkpoint"):
        SignedCheckpoint.from_text(text)


def test_checkpoint_fields_are_checked() -> None:
    with pytest.raises(ValueError):
        Checkpoint("two\nlines", 1, ROOT, 0)
    with pytest.raises(ValueError):
        Checkpoint("x", -1, ROOT, 0)
    with pytest.raises(ValueError):
        Checkpoint("x", 1, ROOT[:31], 0)
