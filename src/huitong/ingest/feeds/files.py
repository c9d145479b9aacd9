"""Feed files by name: the format follows the file's suffix, so ``huitong ingest`` and an upload
endpoint need not choose the converter themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from huitong.ingest.feeds.csv_feed import convert_csv
from huitong.ingest.feeds.json_feed import convert_json
from huitong.ingest.feeds.mapping import FeedMapping
from huitong.ingest.feeds.transaction import Conversion

__all__ = ["FEED_SUFFIXES", "convert_file"]

FEED_SUFFIXES = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".json": "json", ".ndjson": "json", ".jsonl": "json",
}


def convert_file(path: str | Path, mapping: FeedMapping, *, validate: bool = True
                 ) -> Iterator[Conversion]:
    """Convert the file at ``path`` batch by batch (CSV for .csv/.tsv/.txt, JSON for
    .json/.ndjson/.jsonl); the file stays open until the iterator is exhausted or closed.
    Raises ``ValueError`` (with a Chinese message as its second argument) for other
    suffixes."""
    path = Path(path)
    kind = FEED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"{path.name}: not a feed file (expected {', '.join(FEED_SUFFIXES)})",
                         f"{path.name}：不是可导入的数据文件（应为 {'、'.join(FEED_SUFFIXES)}）")
    with path.open("rb") as stream:
        convert = convert_csv if kind == "csv" else convert_json
        yield from convert(stream, mapping, validate=validate)
