"""Blocking keys: short strings two records must share to be compared at all.

The lead stores ``(key, source)`` rows in an indexed table; matching one new record looks
up its keys and compares only records sharing one, so no scan is needed. Keys are designed
so a true pair survives the noise the normalisers do not remove:

* ``rid:<number>`` — resident ID (canonical; invalid numbers as typed);
* ``ph:<digits>`` — each phone number;
* ``id:<system>|<value>`` — each other identifier;
* ``nb:<name key>:<birth key>`` — near-homophone pinyin of the full name with the birth
  date whose month and day are sorted (a day/month swap keeps the key); Latin names whose
  order was guessed give both orders;
* ``gb:<given key>:<birth>:<sex>`` — given-name key with the exact birth date and sex
  (finds a changed or mistyped family name);
* ``fy:<family key>:<given key>:<year>`` — full name with only the birth year (finds a
  mistyped birth date).

Each key is a pure function of one record; :func:`candidate_pairs` is the in-memory
equivalent of the index lookup, used by batch training and the benchmarks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import combinations
from typing import TypeVar

from huitong.mpi.normalize.names import near_homophone
from huitong.mpi.record import IdentityRecord

__all__ = ["KEY_SCHEME", "blocking_keys", "candidate_pairs", "index_keys", "name_keys"]

R = TypeVar("R")

# Version of the key functions below. Change it with any change to what they return: the
# batch re-link trusts stored keys written under the same scheme and recomputes all keys
# (rewriting those that differ) when the stored scheme is another one.
KEY_SCHEME = "1"

# A key shared by more records than this is not selective (a placeholder phone, a data-entry
# default) and is ignored in batch pairing; the online lookup applies the same cap.
MAX_BLOCK = 200


def _birth_key(birth: str) -> str:
    if len(birth) != 8:
        return ""
    return birth[:4] + "".join(sorted((birth[4:6], birth[6:8])))


def blocking_keys(record: IdentityRecord) -> set[str]:
    """The blocking keys of one identity record (see the module docstring)."""
    keys: set[str] = set()
    rid = record.resident_id.number if record.resident_id else record.resident_id_text
    if rid:
        keys.add(f"rid:{rid}")
    keys.update(f"ph:{p.number}" for p in record.phones)
    keys.update(f"id:{i.key}" for i in record.identifiers)
    birth_key = _birth_key(record.birth)
    for name in record.names:
        orders = [(name.family_pinyin, name.given_pinyin)]
        if not name.order_known:
            orders.append((name.given_pinyin, name.family_pinyin))
        for fam, giv in orders:
            fkey, gkey = near_homophone(fam), near_homophone(giv)
            if birth_key and (fkey or gkey):
                keys.add(f"nb:{fkey}{gkey}:{birth_key}")
            if record.birth and gkey and record.sex:
                keys.add(f"gb:{gkey}:{record.birth}:{record.sex}")
            if record.birth and fkey and gkey:
                keys.add(f"fy:{fkey}:{gkey}:{record.birth[:4]}")
    return keys


def name_keys(record: IdentityRecord) -> set[str]:
    """Search keys (not blocking keys): ``nm:<near-homophone pinyin of the full name>``, so a
    demographic search finds 张伟, 章伟, 張偉 and "Zhang Wei" alike. A name alone says too
    little to make two records candidates, so these never take part in blocking."""
    keys: set[str] = set()
    for name in record.names:
        keys.add(f"nm:{near_homophone(name.family_pinyin)}{near_homophone(name.given_pinyin)}")
        if not name.order_known:
            keys.add(f"nm:{near_homophone(name.given_pinyin)}{near_homophone(name.family_pinyin)}")
    keys.discard("nm:")
    return keys


def index_keys(record: IdentityRecord) -> set[str]:
    """Every key stored for a record in ``mpi_keys``: blocking keys and search keys."""
    return blocking_keys(record) | name_keys(record)


def candidate_pairs(
    records: Sequence[R],
    keys: Callable[[R], Iterable[str]],
    *,
    link_only: Sequence[int] | None = None,
    max_block: int = MAX_BLOCK,
) -> set[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of records sharing at least one blocking key.

    ``link_only`` assigns each record a dataset number; pairs within one dataset are then
    skipped (link two files rather than deduplicate one).
    """
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        for key in keys(record):
            blocks[key].append(i)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        if len(members) < 2 or len(members) > max_block:
            continue
        for i, j in combinations(members, 2):
            if link_only is not None and link_only[i] == link_only[j]:
                continue
            pairs.add((i, j) if i < j else (j, i))
    return pairs
