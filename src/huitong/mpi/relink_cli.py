"""The progress bar ``huitong mpi relink`` shows (rich), one bar per stage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from huitong.mpi.relink import Progress as ProgressCallback

__all__ = ["relink_progress"]

STAGES = {
    "read": "Reading records / 读取记录",
    "normalise": "Normalising patients / 标准化患者记录",
    "keys": "Blocking keys / 计算分块键",
    "block": "Candidate blocks / 读取候选分块",
    "score": "Scoring and deciding / 评分并判定关联",
    "write": "Re-indexing records / 重建记录索引",
    "link": "Applying links / 写入关联",
    "rebuild": "Rebuilding golden records / 重建主索引记录",
}


@contextmanager
def relink_progress(*, enabled: bool = True) -> Iterator[ProgressCallback]:
    """A progress callback for :func:`huitong.mpi.relink.relink` drawing to stderr."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(STAGES.get(stage, stage), total=total or None)
        bars.update(tasks[stage], completed=done, total=total or None)

    with bars:
        yield update
