"""A compiled CodeSystem: concepts by code, hierarchy both ways, designations, properties.

Built once per CodeSystem version from the FHIR resource
(https://hl7.org/fhir/R4/codesystem.html) and then only read. The hierarchy is the union of
concept nesting (``CodeSystem.concept.concept``) and the ``parent``/``child`` properties
(https://hl7.org/fhir/R4/codesystem-concept-properties.html), so polyhierarchies work.
Text-search keys (folded text and pinyin) are built lazily on the first text filter, since
most lookups and validations never need them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from huitong.terminology.pinyin import normalise_text, pinyin_keys

__all__ = [
    "CodeSystemIndex", "Concept", "Designation", "Property", "build_index", "language_matches",
]

_INACTIVE_STATUS = frozenset({"retired", "inactive", "deprecated"})
_HIERARCHY_PROPS = frozenset({"parent", "child"})


class Designation(NamedTuple):
    language: str | None
    use: dict[str, Any] | None  # a Coding, e.g. SNOMED 900000000000013009 "synonym"
    value: str


class Property(NamedTuple):
    code: str
    kind: str  # FHIR type of value[x]: code, Coding, string, integer, boolean, dateTime, decimal
    value: Any


@dataclass(slots=True)
class Concept:
    code: str
    display: str | None
    definition: str | None
    designations: tuple[Designation, ...]
    properties: tuple[Property, ...]
    order: int  # position in the CodeSystem, which is the order of an expansion
    inactive: bool = False
    abstract: bool = False

    def property_values(self, code: str) -> list[Any]:
        return [p.value for p in self.properties if p.code == code]


def language_matches(wanted: str, have: str | None) -> bool:
    """BCP-47 prefix match either way: ``zh`` matches ``zh-CN`` and ``zh-CN`` matches ``zh``."""
    if not have:
        return False
    w, h = wanted.lower(), have.lower()
    return w == h or h.startswith(w + "-") or w.startswith(h + "-")


def _property_value(prop: dict[str, Any]) -> tuple[str, Any]:
    for key, value in prop.items():
        if key.startswith("value"):
            kind = key[5:]
            return kind[0].lower() + kind[1:] if kind != "Coding" else "Coding", value
    return "string", None


@dataclass(slots=True)
class _SearchRow:
    code: str
    keys: tuple[str, ...]  # folded code, designations and their pinyin
    haystack: str


@dataclass(slots=True)
class CodeSystemIndex:
    """One CodeSystem version, compiled. Read-only after :func:`build_index`."""

    url: str
    version: str | None
    name: str | None
    title: str | None
    publisher: str | None
    language: str | None
    content: str
    hierarchy_meaning: str | None
    case_sensitive: bool
    property_types: dict[str, str]
    concepts: dict[str, Concept]
    parents: dict[str, tuple[str, ...]]
    children: dict[str, tuple[str, ...]]
    resource_meta: dict[str, Any] = field(default_factory=dict)
    _folded: dict[str, str] | None = None
    _search: list[_SearchRow] | None = None
    _big: str | None = None
    _starts: list[int] | None = None

    def __len__(self) -> int:
        return len(self.concepts)

    def __iter__(self) -> Iterator[Concept]:
        return iter(self.concepts.values())

    def get(self, code: str) -> Concept | None:
        """The concept with ``code``; case-insensitive when the system says caseSensitive false."""
        concept = self.concepts.get(code)
        if concept is not None or self.case_sensitive:
            return concept
        if self._folded is None:
            self._folded = {c.casefold(): c for c in self.concepts}
        real = self._folded.get(code.casefold())
        return self.concepts[real] if real is not None else None

    def parents_of(self, code: str) -> tuple[str, ...]:
        return self.parents.get(code, ())

    def children_of(self, code: str) -> tuple[str, ...]:
        return self.children.get(code, ())

    def ancestors(self, code: str) -> set[str]:
        """Every concept above ``code`` (not itself)."""
        seen: set[str] = set()
        stack = list(self.parents_of(code))
        while stack:
            c = stack.pop()
            if c not in seen:
                seen.add(c)
                stack.extend(self.parents_of(c))
        return seen

    def descendants(self, code: str) -> set[str]:
        """Every concept below ``code`` (not itself)."""
        seen: set[str] = set()
        stack = list(self.children_of(code))
        while stack:
            c = stack.pop()
            if c not in seen:
                seen.add(c)
                stack.extend(self.children_of(c))
        return seen

    def subsumes(self, general: str, specific: str) -> bool:
        """True when ``general`` is ``specific`` or one of its ancestors."""
        return general == specific or general in self.ancestors(specific)

    def display_for(self, concept: Concept, language: str | None = None) -> str | None:
        """The display in ``language`` when the system or a designation has it, else the
        concept's display. A designation with a ``use`` other than display-ish synonyms is
        preferred only when no plain one exists."""
        if not language or language_matches(language, self.language):
            return concept.display
        plain = [d for d in concept.designations
                 if language_matches(language, d.language) and not d.use]
        used = [d for d in concept.designations if language_matches(language, d.language)]
        chosen = plain or used
        return chosen[0].value if chosen else concept.display

    def has_display(self, concept: Concept, text: str) -> bool:
        """``text`` equals the display or any designation (ignoring case and spacing)."""
        t = normalise_text(text)
        names = [concept.display or "", *(d.value for d in concept.designations)]
        return any(normalise_text(n) == t for n in names)

    def search(self, text: str) -> list[str]:
        """Codes whose code, display, designations or pinyin contain every word of ``text``,
        best first: exact matches, then prefix matches, then the rest, each in system order.
        """
        ranks = self.match(text)
        return sorted(ranks, key=lambda c: (ranks[c], self.concepts[c].order))

    def match(self, text: str) -> dict[str, int]:
        """``{code: rank}`` for the concepts :meth:`search` finds (0 exact, 1 prefix, 2 other)."""
        words = normalise_text(text).split()
        if not words:
            return {c: 2 for c in self.concepts}
        whole = " ".join(words)
        joined = whole.replace(" ", "")
        rows = self._search_rows()
        assert self._big is not None and self._starts is not None
        big, starts = self._big, self._starts
        # Find the longest word with C-speed str.find over one joined haystack, then check
        # the other words only on the rows it hit: a 100k-concept search stays in milliseconds.
        first = max(words, key=len)
        hits: list[int] = []
        pos = big.find(first)
        while pos != -1:
            row_no = bisect_right(starts, pos) - 1
            if not hits or hits[-1] != row_no:
                hits.append(row_no)
            pos = big.find(first, starts[row_no + 1] if row_no + 1 < len(starts) else len(big))
        out: dict[str, int] = {}
        for row_no in hits:
            row = rows[row_no]
            if not all(w in row.haystack for w in words):
                continue
            if any(k in (whole, joined) for k in row.keys):
                out[row.code] = 0
            elif any(k.startswith(whole) or k.startswith(joined) for k in row.keys):
                out[row.code] = 1
            else:
                out[row.code] = 2
        return out

    def _search_rows(self) -> list[_SearchRow]:
        if self._search is None:
            rows: list[_SearchRow] = []
            for c in self.concepts.values():
                keys: list[str] = [normalise_text(c.code)]
                for name in (c.display, *(d.value for d in c.designations)):
                    if not name:
                        continue
                    folded = normalise_text(name)
                    keys.append(folded)
                    py = pinyin_keys(name)
                    if py:
                        keys.extend(py)
                rows.append(_SearchRow(c.code, tuple(keys), "\x00".join(keys)))
            starts: list[int] = []
            offset = 0
            for row in rows:
                starts.append(offset)
                offset += len(row.haystack) + 1
            self._big = "\n".join(r.haystack for r in rows)
            self._starts = starts
            self._search = rows
        return self._search


def _designations(raw: list[dict[str, Any]] | None) -> tuple[Designation, ...]:
    if not raw:
        return ()
    return tuple(
        Designation(d.get("language"), d.get("use"), d["value"]) for d in raw if d.get("value")
    )


def build_index(code_system: dict[str, Any]) -> CodeSystemIndex:
    """Compile a CodeSystem resource. ``parent``/``child`` property values and nesting both
    become hierarchy edges; ``inactive``/``status``/``notSelectable`` set the flags."""
    concepts: dict[str, Concept] = {}
    parents: dict[str, list[str]] = {}
    property_types = {
        p["code"]: p.get("type", "string") for p in code_system.get("property", []) or []
        if p.get("code")
    }

    def edge(parent: str, child: str) -> None:
        ps = parents.setdefault(child, [])
        if parent not in ps:
            ps.append(parent)

    stack: list[tuple[dict[str, Any], str | None]] = [
        (c, None) for c in reversed(code_system.get("concept", []) or [])
    ]
    while stack:
        raw, parent = stack.pop()
        code = raw.get("code")
        if not code:
            continue
        props: list[Property] = []
        inactive = abstract = False
        for p in raw.get("property", []) or []:
            kind, value = _property_value(p)
            pcode = p.get("code", "")
            if pcode == "parent" and isinstance(value, str):
                edge(value, code)
            elif pcode == "child" and isinstance(value, str):
                edge(code, value)
            elif (pcode == "inactive" and value is True) or (
                pcode == "status" and isinstance(value, str)
                and value.lower() in _INACTIVE_STATUS
            ):
                inactive = True
            elif pcode == "notSelectable" and value is True:
                abstract = True
            if pcode not in _HIERARCHY_PROPS:
                props.append(Property(pcode, kind, value))
        if parent is not None:
            edge(parent, code)
        concepts[code] = Concept(
            code, raw.get("display"), raw.get("definition"),
            _designations(raw.get("designation")), tuple(props), len(concepts),
            inactive, abstract,
        )
        for child in reversed(raw.get("concept", []) or []):
            stack.append((child, code))

    children: dict[str, list[str]] = {}
    for child, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(child)
    order = {c: concept.order for c, concept in concepts.items()}
    last = len(order)
    return CodeSystemIndex(
        url=code_system.get("url", ""),
        version=code_system.get("version"),
        name=code_system.get("name"),
        title=code_system.get("title"),
        publisher=code_system.get("publisher"),
        language=code_system.get("language"),
        content=code_system.get("content", "complete"),
        hierarchy_meaning=code_system.get("hierarchyMeaning"),
        case_sensitive=code_system.get("caseSensitive", True) is not False,
        property_types=property_types,
        concepts=concepts,
        parents={c: tuple(ps) for c, ps in parents.items()},
        children={
            p: tuple(sorted(cs, key=lambda c: order.get(c, last))) for p, cs in children.items()
        },
        resource_meta=dict(code_system.get("meta") or {}),
    )
