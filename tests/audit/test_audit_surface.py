"""The audit package's public surface is explicit: ``__all__`` is exactly what it exports."""

from __future__ import annotations

import inspect

import huitong.audit


def test_all_is_exactly_the_public_names() -> None:
    names = huitong.audit.__all__
    assert len(names) == len(set(names))
    public = {
        n
        for n, v in vars(huitong.audit).items()
        if not n.startswith("_") and not inspect.ismodule(v)
    }
    assert public == set(names)
    assert {"MerkleLog", "verify_log", "to_audit_event", "sign_checkpoint"} <= public
