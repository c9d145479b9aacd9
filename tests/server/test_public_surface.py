"""The server package exports exactly its public surface."""

from __future__ import annotations

import huitong.server


def test_public_surface():
    assert huitong.server.__all__ == ["create_app"]
    assert callable(huitong.server.create_app)
