"""Token buckets for rate limiting (issue 5, "Rate limiting"): in-process, or shared by
every worker through Redis.

A bucket holds up to ``limit.requests`` tokens and refills at ``requests / seconds`` per
second; a request takes one token or is refused with the time until one is back. The Redis
buckets run one Lua script (atomic on the server: two workers can never both take the last
token) that reads the Redis server's own clock, so workers with drifting clocks still share
one refill schedule. Keys expire once a bucket would be full again, so idle clients cost
nothing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Limit", "LocalBuckets", "RedisBuckets", "Verdict", "parse_limit"]


@dataclass(frozen=True, slots=True)
class Limit:
    """``requests`` per ``seconds`` (also the burst a full bucket allows)."""

    requests: int
    seconds: float = 60.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: float  # seconds until a token is back (0 when allowed)
    remaining: int


def parse_limit(text: str) -> Limit | None:
    """``"100"`` (per minute), ``"100/minute"``, ``"5/second"``, ``"1000/hour"``; None for
    ``"0"`` or ``"off"`` (no limit). ``ValueError`` otherwise."""
    raw = text.strip().lower()
    if raw in ("0", "off", ""):
        return None
    count, _, unit = raw.partition("/")
    seconds = {"": 60.0, "s": 1.0, "second": 1.0, "m": 60.0, "minute": 60.0, "h": 3600.0,
               "hour": 3600.0}.get(unit.strip())  # fmt: skip
    if seconds is None or not count.strip().isdigit():
        raise ValueError(f"rate limit {text!r}: expected N, N/second, N/minute or N/hour")
    n = int(count)
    return None if n == 0 else Limit(n, seconds)


class LocalBuckets:
    """Buckets in this process. ``now`` is a monotonic clock in seconds (injected for tests;
    the data clock of the repository is not used: limits are about wall time passing)."""

    def __init__(self, now: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self._now = now
        self._max = max_keys
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, limit: Limit) -> Verdict:
        now = self._now()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(limit.requests), now))
            tokens = min(float(limit.requests), tokens + (now - at) * limit.rate)
            if tokens >= 1.0:
                verdict = Verdict(True, 0.0, int(tokens - 1.0))
                tokens -= 1.0
            else:
                verdict = Verdict(False, (1.0 - tokens) / limit.rate, 0)
            if len(self._buckets) >= self._max and key not in self._buckets:
                # a flood of distinct clients: forget the fullest (oldest) buckets first
                self._buckets.clear()
            self._buckets[key] = (tokens, now)
        return verdict


# KEYS[1] bucket; ARGV: capacity, rate (tokens per second). Redis TIME is the clock.
_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return {allowed, tostring(wait), math.floor(tokens)}
"""


class RedisBuckets:
    """Buckets shared through Redis at ``url`` (``redis://host:port/db``). :meth:`take`
    raises the client's exception when Redis is unreachable: the caller decides (the
    middleware falls back to in-process buckets)."""

    def __init__(self, url: str, prefix: str = "huitong:ratelimit:") -> None:
        import redis.asyncio as aioredis

        self._client: Any = aioredis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        self._script = self._client.register_script(_LUA)
        self.prefix = prefix

    async def take(self, key: str, limit: Limit) -> Verdict:
        allowed, wait, remaining = await self._script(
            keys=[self.prefix + key], args=[limit.requests, repr(limit.rate)]
        )
        return Verdict(bool(int(allowed)), max(0.0, float(wait)), int(remaining))

    async def close(self) -> None:
        await self._client.aclose()


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, never 0 (RFC 9110 §10.2.3)."""
    return str(max(1, math.ceil(seconds)))
