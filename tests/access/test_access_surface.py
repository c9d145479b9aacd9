"""The access package's public surface is explicit: ``__all__`` is exactly what it exports."""

from __future__ import annotations

import inspect

import huitong.access


def test_all_is_exactly_the_public_names() -> None:
    names = huitong.access.__all__
    assert len(names) == len(set(names))
    public = {
        n
        for n, v in vars(huitong.access).items()
        if not n.startswith("_") and not inspect.ismodule(v) and n != "annotations"
    }
    assert public == set(names)
    assert {"decide", "parse_scopes", "evaluate_consents", "verify_pkce"} <= public
