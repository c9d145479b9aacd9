"""Page text in Simplified Chinese and English from one catalogue (``messages.toml``).

Every entry has both languages (a test keeps it so). An entry is a TOML table with ``en``
and ``zh``; tables nest, and the key is the dotted path (``nav.clinician``). Text may hold
``{name}`` placeholders filled by :meth:`Translator.__call__`. Counted text has ``.one`` and
``.other`` entries, picked by :meth:`Translator.count` (Chinese uses the same text for both).

The language is chosen per request: ``?lang=`` (remembered in a cookie), else the cookie,
else Simplified Chinese.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Catalogue",
    "Translator",
    "choose_language",
    "load_catalogue",
]

log = logging.getLogger("huitong.web")

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
CATALOGUE_FILES = ("messages.toml", "messages_portal.toml")
_FIELD = {"zh-CN": "zh", "en": "en"}


@dataclass(frozen=True, slots=True)
class Catalogue:
    """``entries[key] == {"en": ..., "zh": ...}``."""

    entries: dict[str, dict[str, str]]

    def text(self, key: str, lang: str) -> str:
        entry = self.entries.get(key)
        if entry is None:
            # A missing key is a bug the catalogue test catches; show the key, not a 500.
            log.warning("missing web text %s", key)
            return key
        return entry[_FIELD.get(lang, "zh")]


def _flatten(table: dict[str, Any], prefix: str, out: dict[str, dict[str, str]]) -> None:
    leaf = {k: v for k, v in table.items() if isinstance(v, str)}
    if leaf:
        out[prefix] = leaf
    for key, value in table.items():
        if isinstance(value, dict):
            _flatten(value, f"{prefix}.{key}" if prefix else key, out)


@cache
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the package (read once)."""
    entries: dict[str, dict[str, str]] = {}
    # the portal's and audit pages' texts live in their own file (one catalogue)
    for name in CATALOGUE_FILES:
        text = resources.files("huitong.web").joinpath(name).read_text("utf-8")
        _flatten(tomllib.loads(text), "", entries)
    return Catalogue(entries)


def choose_language(query: str | None, cookie: str | None) -> str:
    """``query`` (``?lang=``) wins, then ``cookie``; anything unknown means the default."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
        if candidate and candidate.lower().startswith("zh"):
            return "zh-CN"
    return DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)
class Translator:
    """``t("key", n=3)``: the entry in this language with placeholders filled."""

    catalogue: Catalogue
    lang: str

    def __call__(self, key: str, **values: object) -> str:
        text = self.catalogue.text(key, self.lang)
        if not values:
            return text
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError):
            log.warning("bad placeholders in web text %s", key)
            return text

    def count(self, key: str, n: int, **values: object) -> str:
        """Counted text: ``key.one`` when ``n`` is 1, else ``key.other``."""
        return self(f"{key}.{'one' if n == 1 else 'other'}", n=n, **values)
