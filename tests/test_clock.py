"""The injected id factory: ``new_uuid`` gives what ``str(uuid.uuid4())`` gives."""

from __future__ import annotations

import re
import uuid

from huitong.clock import new_uuid

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_new_uuid_is_a_canonical_version_4_uuid() -> None:
    seen = set()
    for _ in range(20000):
        text = new_uuid()
        assert _CANONICAL.fullmatch(text), text
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
        seen.add(text)
    assert len(seen) == 20000


def test_new_uuid_uses_every_random_bit() -> None:
    # The 122 random bits all vary: OR-ing many ids sets each of them, AND-ing clears them,
    # leaving only the fixed version and variant bits.
    ones, zeros = 0, (1 << 128) - 1
    for _ in range(2000):
        value = uuid.UUID(new_uuid()).int
        ones |= value
        zeros &= value
    fixed = uuid.UUID("00000000-0000-4000-8000-000000000000").int
    variant_mask = uuid.UUID("00000000-0000-f000-c000-000000000000").int
    assert ones == ((1 << 128) - 1) & ~(variant_mask & ~fixed)
    assert zeros == fixed


def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    # Random bytes are drawn in blocks; a child forked with part of a block left must draw
    # its own, or parent and child would mint the same ids.
    import os

    new_uuid()  # the parent now holds the rest of a block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send ten ids and leave at once
        os.write(write, ",".join(new_uuid() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    child = set(os.read(read, 4096).decode().split(","))
    os.waitpid(pid, 0)
    os.close(read)
    parent = {new_uuid() for _ in range(10)}
    assert len(child) == 10 and not child & parent
