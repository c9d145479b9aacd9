"""ValueSet ``$expand`` — https://hl7.org/fhir/R4/valueset-operation-expand.html.

Returns the ValueSet with an ``expansion`` (https://hl7.org/fhir/R4/valueset.html#expansion):
``identifier``, ``timestamp``, ``total`` (every member after ``filter``), ``offset``, the
``parameter`` values that shaped it and the ``contains`` page. The ``filter`` text matches
codes, displays and designations in any language and the pinyin of Chinese ones, every word
of it, best matches first. The expansion is flat. Failure contract: TOO_LARGE when no
``count`` is given and the total exceeds the limit (page with count/offset instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from huitong.fhir.errors import Category
from huitong.terminology._messages import error
from huitong.terminology.compose import Member, Resolver, enumerate_value_set
from huitong.terminology.index import CodeSystemIndex, language_matches
from huitong.terminology.pinyin import normalise_text, pinyin_keys

__all__ = ["ExpandRequest", "expand"]


@dataclass(frozen=True, slots=True)
class ExpandRequest:
    filter: str | None = None
    offset: int = 0
    count: int | None = None
    display_language: str | None = None
    include_designations: bool = False
    designations: tuple[str, ...] = ()  # languages or "system|code" uses to keep
    active_only: bool = False
    system_versions: tuple[tuple[str, str], ...] = ()


def _filtered(members: list[Member], text: str) -> list[Member]:
    ranks: dict[int, dict[str, int]] = {}
    words = normalise_text(text).split()
    ranked: list[tuple[int, int, Member]] = []
    for pos, m in enumerate(members):
        rank: int | None
        if m.index is not None and m.concept is not None:
            table = ranks.get(id(m.index))
            if table is None:
                table = ranks[id(m.index)] = m.index.match(text)
            rank = table.get(m.concept.code)
            if rank is None and m.display and m.display != m.concept.display:
                rank = _plain_rank(words, m.code, m.display)
        else:
            rank = _plain_rank(words, m.code, m.display)
        if rank is not None:
            ranked.append((rank, pos, m))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [m for _, _, m in ranked]


def _plain_rank(words: list[str], code: str, display: str | None) -> int | None:
    keys = [normalise_text(code)]
    if display:
        keys.append(normalise_text(display))
        keys.extend(pinyin_keys(display) or ())
    hay = "\x00".join(keys)
    if not all(w in hay for w in words):
        return None
    whole = " ".join(words)
    return 0 if whole in keys else 1 if any(k.startswith(whole) for k in keys) else 2


def _keep_designation(d: Any, wanted: Sequence[str]) -> bool:
    if not wanted:
        return True
    for w in wanted:
        if "|" in w:
            system, _, code = w.partition("|")
            use = d.use or {}
            if use.get("code") == code and use.get("system", system) == system:
                return True
        elif language_matches(w, d.language):
            return True
    return False


def _contains(m: Member, req: ExpandRequest) -> dict[str, Any]:
    item: dict[str, Any] = {"system": m.system}
    if m.version:
        item["version"] = m.version
    if m.concept is not None and m.concept.abstract:
        item["abstract"] = True
    if m.concept is not None and m.concept.inactive:
        item["inactive"] = True
    item["code"] = m.code
    index: CodeSystemIndex | None = m.index
    if req.display_language and index is not None and m.concept is not None:
        display = index.display_for(m.concept, req.display_language)
    else:
        display = m.display
    if display:
        item["display"] = display
    if req.include_designations and m.concept is not None and m.concept.designations:
        ds = []
        for d in m.concept.designations:
            if not _keep_designation(d, req.designations):
                continue
            entry: dict[str, Any] = {}
            if d.language:
                entry["language"] = d.language
            if d.use:
                entry["use"] = d.use
            entry["value"] = d.value
            ds.append(entry)
        if ds:
            item["designation"] = ds
    return item


def expand(
    value_set: dict[str, Any], resolver: Resolver, request: ExpandRequest, *,
    timestamp: str, identifier: str, max_size: int = 10_000,
) -> dict[str, Any]:
    """The expanded ValueSet. ``timestamp`` and ``identifier`` come from the injected clock
    and id factory, so an expansion is reproducible in tests."""
    members = enumerate_value_set(
        value_set, resolver, active_only=request.active_only,
        system_versions=dict(request.system_versions),
    )
    if request.filter:
        members = _filtered(members, request.filter)
    total = len(members)
    if request.count is None and total - request.offset > max_size:
        raise error(Category.TOO_LARGE, "too-costly", issue_code="too-costly", total=total,
                    limit=max_size)
    end = None if request.count is None else request.offset + request.count
    page = members[request.offset:end]

    params: list[dict[str, Any]] = []
    if request.filter:
        params.append({"name": "filter", "valueString": request.filter})
    params.append({"name": "offset", "valueInteger": request.offset})
    if request.count is not None:
        params.append({"name": "count", "valueInteger": request.count})
    if request.display_language:
        params.append({"name": "displayLanguage", "valueCode": request.display_language})
    if request.active_only:
        params.append({"name": "activeOnly", "valueBoolean": True})
    if request.include_designations:
        params.append({"name": "includeDesignations", "valueBoolean": True})
    used: dict[str, str] = {}
    for m in members:
        if m.version and m.system not in used:
            used[m.system] = f"{m.system}|{m.version}"
    params += [{"name": "version", "valueUri": v} for v in used.values()]

    out = {k: v for k, v in value_set.items() if k not in ("expansion", "text")}
    expansion: dict[str, Any] = {
        "identifier": identifier, "timestamp": timestamp, "total": total,
        "offset": request.offset, "parameter": params,
    }
    if page:
        expansion["contains"] = [_contains(m, request) for m in page]
    out["expansion"] = expansion
    return out
