"""Where CodeSystems, ValueSets and ConceptMaps come from: one narrow seam.

The terminology operations never read a database. They ask a :class:`TerminologySource`,
which the repository implements in production and :class:`InMemoryTerminologySource`
implements for tests and for the CLI. Every resource is keyed by ``(url, version)``: adding
a new version keeps the old one, and asking without a version gets the newest added.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["InMemoryTerminologySource", "TerminologySource"]


@runtime_checkable
class TerminologySource(Protocol):
    def code_system(self, url: str, version: str | None = None) -> dict[str, Any] | None:
        """The CodeSystem with this canonical ``url`` (and ``version``; None = the newest)."""
        ...

    def value_set(self, url: str, version: str | None = None) -> dict[str, Any] | None:
        """The ValueSet with this canonical ``url`` (and ``version``; None = the newest)."""
        ...

    def concept_maps(self, source: str | None, target: str | None) -> list[dict[str, Any]]:
        """ConceptMaps whose source/target scope (``sourceUri``/``sourceCanonical``,
        ``targetUri``/``targetCanonical``) equals ``source``/``target``; None matches any."""
        ...


def _split(url: str) -> tuple[str, str | None]:
    # A canonical may carry its version after '|' (https://hl7.org/fhir/R4/references.html#canonical).
    base, sep, ver = url.partition("|")
    return base, (ver or None) if sep else None


class _Versions:
    def __init__(self) -> None:
        self._by_url: dict[str, dict[str | None, dict[str, Any]]] = {}

    def add(self, resource: dict[str, Any]) -> None:
        versions = self._by_url.setdefault(resource["url"], {})
        key = resource.get("version")
        versions.pop(key, None)  # re-adding a version makes it the newest again
        versions[key] = resource

    def get(self, url: str, version: str | None) -> dict[str, Any] | None:
        url, pinned = _split(url)
        version = version or pinned
        versions = self._by_url.get(url)
        if not versions:
            return None
        if version is None:
            return next(reversed(versions.values()))
        return versions.get(version)

    def versions(self, url: str) -> list[str | None]:
        return list(self._by_url.get(url, {}))

    def all(self) -> list[dict[str, Any]]:
        return [r for vs in self._by_url.values() for r in vs.values()]


class InMemoryTerminologySource:
    """A :class:`TerminologySource` over resources held in memory."""

    def __init__(self, resources: list[dict[str, Any]] | None = None) -> None:
        self._code_systems = _Versions()
        self._value_sets = _Versions()
        self._concept_maps: list[dict[str, Any]] = []
        for resource in resources or []:
            self.add(resource)

    def add(self, resource: dict[str, Any]) -> None:
        """Add a CodeSystem, ValueSet or ConceptMap; a new version keeps the older ones."""
        kind = resource.get("resourceType")
        if kind == "CodeSystem":
            self._code_systems.add(resource)
        elif kind == "ValueSet":
            self._value_sets.add(resource)
        elif kind == "ConceptMap":
            same = [
                i for i, cm in enumerate(self._concept_maps)
                if cm.get("url") == resource.get("url")
                and cm.get("version") == resource.get("version")
            ]
            for i in reversed(same):
                del self._concept_maps[i]
            self._concept_maps.append(resource)
        else:
            raise ValueError(f"not a terminology resource: {kind}")

    def code_system(self, url: str, version: str | None = None) -> dict[str, Any] | None:
        return self._code_systems.get(url, version)

    def code_system_versions(self, url: str) -> list[str | None]:
        return self._code_systems.versions(url)

    def value_set(self, url: str, version: str | None = None) -> dict[str, Any] | None:
        return self._value_sets.get(url, version)

    def concept_maps(self, source: str | None, target: str | None) -> list[dict[str, Any]]:
        def scope(cm: dict[str, Any], side: str) -> str | None:
            return cm.get(f"{side}Uri") or cm.get(f"{side}Canonical")

        return [
            cm for cm in self._concept_maps
            if (source is None or scope(cm, "source") == source)
            and (target is None or scope(cm, "target") == target)
        ]
