"""The clock the intake and message-store tests inject: every reading 1 ms after the last,
from a fixed instant, so received and processed times are distinct and repeatable."""

from __future__ import annotations


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000_000_000

    def __call__(self) -> int:
        self.now += 1000
        return self.now
