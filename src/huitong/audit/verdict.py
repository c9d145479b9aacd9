"""A check's result as data: passed, or failed with a stable code and a bilingual reason."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """``ok`` plus, on failure, a machine-readable ``code`` and the reason in English and
    Simplified Chinese. Truthy exactly when the check passed."""

    ok: bool
    code: str = "ok"
    en: str = ""
    zh: str = ""

    def __bool__(self) -> bool:
        return self.ok

    @classmethod
    def passed(cls) -> Verdict:
        return _PASSED

    @classmethod
    def failed(cls, code: str, en: str, zh: str) -> Verdict:
        return cls(False, code, en, zh)


_PASSED = Verdict(True)
