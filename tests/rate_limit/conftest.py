"""Rate-limit tests use the consent tests' region (real app, real tokens) and the local
Redis (127.0.0.1:6379, ``HUITONG_TEST_REDIS_URL``): required like PostgreSQL — set
``HUITONG_TEST_REDIS=skip`` to skip the shared-bucket runs on a machine without one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "consent_api"))

REDIS_URL = os.environ.get("HUITONG_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url() -> str:
    if os.environ.get("HUITONG_TEST_REDIS", "").lower() == "skip":
        pytest.skip("Redis runs skipped by HUITONG_TEST_REDIS=skip")
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:  # pragma: no cover - environment problem
        pytest.fail(
            f"Redis is required for the shared rate-limit tests but is unreachable "
            f"at {REDIS_URL}: {exc}. Start redis-server, or set "
            "HUITONG_TEST_REDIS=skip."
        )
    return REDIS_URL
