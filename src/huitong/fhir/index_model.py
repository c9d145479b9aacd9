"""The search-index rows a resource produces, one list per value type.

The indexer (:mod:`huitong.fhir.index`) fills an :class:`IndexEntries` from a resource; the
store writes each list to its table (``idx_string``, ``idx_token``...) adding the row's
``rid``, ``res_type`` and ``patient_key``. Every row starts with ``(param, grp)``:
``param`` is the search parameter code, ``grp`` is 0 for ordinary rows. A composite
parameter (``code-value-quantity``) writes each component as a row named
``"<composite>$<i>"`` (``code-value-quantity$0``, ``code-value-quantity$1``) with the same
``grp`` (1, 2, ... one per composite value), so a query joins the components on ``grp``.

Value conventions shared by the indexer and the search compiler:

- strings: ``norm`` is :func:`normalize_string` of the value (case- and accent-folded,
  whitespace collapsed); ``exact`` is the value as written.
- tokens: ``system`` and ``code`` as written (either may be None); ``text`` is the normalised
  display / CodeableConcept.text / Identifier type text for ``:text``. A Reference's
  ``identifier`` is indexed as a token row named ``"<param>:identifier"``.
- references: ``target_type``/``target_id`` for literal references (``Patient/123``,
  absolute URLs on this server stripped to that form), ``url`` for canonical and external
  references (version suffix ``|x`` removed; kept whole in ``url`` otherwise None).
- dates: ``lo`` and ``hi`` are inclusive bounds in microseconds since 1970-01-01T00:00Z,
  widened to the precision written (``2020-03`` -> the whole month). Open ends use
  :data:`DATE_MIN` / :data:`DATE_MAX`.
- numbers and quantities: ``value`` as written, ``lo``/``hi`` the implicit-precision range
  (``1.5`` -> [1.45, 1.55]); quantity ``code`` is the UCUM/system code or, lacking one, the
  unit text; ``unit`` is the human unit text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

__all__ = ["DATE_MAX", "DATE_MIN", "IndexEntries", "normalize_string"]

DATE_MIN = -(2**62)
DATE_MAX = 2**62

StringRow = tuple[str, int, str, str]  # param, grp, norm, exact
TokenRow = tuple[str, int, str | None, str | None, str | None]  # param, grp, system, code, text
ReferenceRow = tuple[str, int, str | None, str | None, str | None]  # param, grp, type, id, url
DateRow = tuple[str, int, int, int]  # param, grp, lo, hi
NumberRow = tuple[str, int, float, float, float]  # param, grp, value, lo, hi
QuantityRow = tuple[str, int, str | None, str | None, str | None, float, float, float]
UriRow = tuple[str, int, str]  # param, grp, value


@dataclass(slots=True)
class IndexEntries:
    """Rows for each index table, plus the Patient compartments the resource belongs to."""

    string: list[StringRow] = field(default_factory=list)
    token: list[TokenRow] = field(default_factory=list)
    reference: list[ReferenceRow] = field(default_factory=list)
    date: list[DateRow] = field(default_factory=list)
    number: list[NumberRow] = field(default_factory=list)
    quantity: list[QuantityRow] = field(default_factory=list)
    uri: list[UriRow] = field(default_factory=list)
    # ids of the Patients whose compartment holds this resource (for a Patient: its own id);
    # the first is the row's compartment key (``patient_key``).
    patients: list[str] = field(default_factory=list)


def normalize_string(value: str) -> str:
    """Case-fold, strip accents and collapse whitespace, as FHIR string search requires.

    Chinese characters are left as they are: they have no case and no accents.
    """
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())
