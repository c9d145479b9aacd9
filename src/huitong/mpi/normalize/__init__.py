"""Normalisers: one module per kind of identifying data, each pure and data in / data out."""

from huitong.mpi.normalize.addresses import Address, division_name, parse_address
from huitong.mpi.normalize.identifiers import Identifier, normalize_identifier
from huitong.mpi.normalize.names import (
    PersonName,
    han_pinyin,
    near_homophone,
    parse_name,
    split_han_name,
    surname_pinyin,
)
from huitong.mpi.normalize.phones import Phone, parse_phone
from huitong.mpi.normalize.text import fold_width, to_simplified

__all__ = [
    "Address",
    "Identifier",
    "PersonName",
    "Phone",
    "division_name",
    "fold_width",
    "han_pinyin",
    "near_homophone",
    "normalize_identifier",
    "parse_address",
    "parse_name",
    "parse_phone",
    "split_han_name",
    "surname_pinyin",
    "to_simplified",
]
