"""Persistence behind one :class:`~huitong.store.repository.Repository` API, two engines."""

from huitong.store.repository import (
    HistoryPage,
    Repository,
    SearchPage,
    StoredResource,
    Transaction,
    WriteOutcome,
)

__all__ = [
    "HistoryPage",
    "Repository",
    "SearchPage",
    "StoredResource",
    "Transaction",
    "WriteOutcome",
    "open_repository",
]


def open_repository(url: str, **kwargs: object) -> Repository:
    """Open the repository at a database URL: ``sqlite:///path`` or ``postgresql://...``."""
    from huitong.store.engines import open_engine

    return open_engine(url, **kwargs)
