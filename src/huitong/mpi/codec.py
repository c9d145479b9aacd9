"""Stored form of an :class:`IdentityRecord`: compact JSON in ``mpi_records``.

Normalising a Patient (traditional → simplified, pinyin, address division lookup, resident
ID checks) costs about half a millisecond; comparing two normalised records costs tens of
microseconds. Keeping the normalised record beside the blocking keys lets ``$match`` fetch
its candidates with one query and score them without re-reading and re-normalising their
Patients, and lets a batch re-link after retraining start from the records directly.

The JSON is positional (arrays, not objects) because a million of them are stored and read
in bulk; :data:`CODEC_VERSION` is its first element so a future layout can be told apart.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson

from huitong.mpi.normalize.addresses import Address
from huitong.mpi.normalize.identifiers import Identifier
from huitong.mpi.normalize.names import PersonName
from huitong.mpi.normalize.phones import Phone
from huitong.mpi.record import IdentityRecord
from huitong.mpi.resident_id import ResidentId

__all__ = ["CODEC_VERSION", "record_from_json", "record_to_json"]

CODEC_VERSION = 1


def record_to_json(record: IdentityRecord) -> str:
    rid = record.resident_id
    doc: list[Any] = [
        CODEC_VERSION,
        record.source,
        record.source_org,
        [[n.family, n.given, n.script, n.family_pinyin, n.given_pinyin, n.order_known]
         for n in record.names],
        record.birth,
        record.sex,
        [rid.number, rid.area_code, rid.birth_date.isoformat(), rid.sex, rid.upgraded_from_15,
         rid.kind] if rid else None,
        record.resident_id_text,
        [[p.number, p.kind, p.area_code] for p in record.phones],
        [[a.province, a.city, a.district, a.rest, a.postal_code, a.province_code, a.city_code,
          a.district_code] for a in record.addresses],
        [[i.system, i.value] for i in record.identifiers],
        record.updated_at.isoformat() if record.updated_at else None,
    ]  # fmt: skip
    return orjson.dumps(doc).decode()


def record_from_json(text: str | bytes) -> IdentityRecord:
    """The record :func:`record_to_json` stored. Raises ``ValueError`` on another layout."""
    doc = orjson.loads(text)
    if not isinstance(doc, list) or not doc or doc[0] != CODEC_VERSION:
        raise ValueError("not a stored identity record of a known layout")
    (_v, source, org, names, birth, sex, rid, rid_text, phones, addresses, idents,
     updated) = doc  # fmt: skip
    # Positional arguments and list comprehensions: a batch re-link decodes hundreds of
    # thousands of these, and this spelling costs about a quarter less than keywords and
    # generator expressions.
    return IdentityRecord(
        source,
        org,
        tuple([PersonName(f, g, s, fp, gp, bool(k)) for f, g, s, fp, gp, k in names]),
        birth,
        sex,
        ResidentId(rid[0], rid[1], _date(rid[2]), rid[3], bool(rid[4]), rid[5]) if rid else None,
        rid_text,
        tuple([Phone(n, k, a) for n, k, a in phones]),
        tuple([Address(*a) for a in addresses]),
        tuple([Identifier(s, v) for s, v in idents]),
        _datetime(updated) if updated else None,
    )


_date = date.fromisoformat
_datetime = datetime.fromisoformat
