"""The two ways a message can fail to map, each carrying what the sender is told.

- :class:`UnsupportedMessage`: a message type or trigger event Huitong does not map. The
  caller answers ``AR``; ``code`` is from HL7 table 0357 (200 unsupported message type,
  201 unsupported event code).
- :class:`MappingError`: the content is wrong (a required segment or field is missing, a
  value does not fit its type). The caller answers ``AE`` with an ERR segment built from
  ``code`` (table 0357: 100 segment sequence error, 101 required field missing, 102 data type
  error, 103 table value not found), ``location`` (``PID[1].3``), ``en`` and ``zh``.

Table 0357: https://terminology.hl7.org/CodeSystem-v2-0357.html
"""

from __future__ import annotations

__all__ = ["MappingError", "UnsupportedMessage"]


class UnsupportedMessage(Exception):
    """Raised for a message type (code 200) or event (code 201) that is not mapped."""

    def __init__(self, code: int, en: str, zh: str) -> None:
        super().__init__(en)
        self.code = code
        self.en = en
        self.zh = zh


class MappingError(Exception):
    """Raised for content that cannot be mapped; ``location`` names the segment and field."""

    def __init__(self, code: int, location: str, en: str, zh: str) -> None:
        super().__init__(f"{location}: {en}")
        self.code = code
        self.location = location
        self.en = en
        self.zh = zh
