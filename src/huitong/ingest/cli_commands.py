"""``huitong ingest csv|json|dicom|device …``: feed files into a channel from the command line.

Registered on the ``ingest`` group with ``ingest.add_command(...)``. Each command takes
``--channel ID`` (required: a feed names no sender to route by) and ``--db`` like the others,
goes through the same intake as the upload endpoints, and prints per file what became of it
and the row-level report, in English and Simplified Chinese. Exit status 1 when any file was
not processed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

__all__ = ["ingest_csv", "ingest_device", "ingest_dicom", "ingest_json"]

_PATHS = click.argument("paths", nargs=-1, required=True,
                        type=click.Path(exists=True, path_type=Path))
_CHANNEL = click.option("--channel", "channel_id", required=True, help="Channel id / 通道 id.")
_DB = click.option("--db", help="Database URL / 数据库地址.")
_SHOWN = 20  # report lines printed per file; the rest are in the message store
_RESULT_ZH = {"created": "已处理", "duplicate": "重复（已处理过）", "error": "错误",
              "queued": "已排队重试"}


def _files(paths: Iterable[Path]) -> list[Path]:
    return sorted(p for path in paths for p in ([path] if path.is_file() else path.rglob("*"))
                  if p.is_file())


def _problem_line(p: dict[str, Any]) -> str:
    where = " ".join(f"{k}={p[k]}" for k in ("row", "line", "field", "pointer", "source")
                     if k in p)
    return f"  {p.get('severity', 'error')} {p.get('reason')} {where}: {p['en']} / {p['zh']}"


def _print(label: str, outcome: Any) -> None:
    result = outcome.result
    click.echo(f"{label}: {result} / {_RESULT_ZH.get(result, result)} — records {outcome.records}"
               f", accepted {outcome.accepted}, resources {outcome.produced}, problems "
               f"{len(outcome.report)} / 记录 {outcome.records}，接受 {outcome.accepted}，资源 "
               f"{outcome.produced}，问题 {len(outcome.report)}")
    for p in outcome.report[:_SHOWN]:
        click.echo(_problem_line(p), err=p.get("severity") == "error")
    if len(outcome.report) > _SHOWN:
        click.echo(f"  … {len(outcome.report) - _SHOWN} more in the message store / "
                   f"其余见消息存储")


def _run(channel_id: str, db: str | None,
         work: Callable[[Any], Iterable[tuple[str, Any]]]) -> None:
    from huitong.cli import _ingest_service, _settings
    from huitong.fhir.errors import FhirError

    service = _ingest_service(_settings(db))
    failed = 0
    try:
        for label, outcome in work(service):
            _print(label, outcome)
            failed += outcome.result not in ("created", "duplicate")
    except FhirError as exc:
        en, _, zh = exc.message.partition(" / ")
        click.secho(f"{en}\n{zh or en}", fg="red", err=True)
        sys.exit(1)
    finally:
        service.repo.close()
    if failed:
        sys.exit(1)


def _each_file(method: str) -> Callable[[tuple[Path, ...], str, str | None], None]:
    def command(paths: tuple[Path, ...], channel_id: str, db: str | None) -> None:
        def work(service: Any) -> Iterable[tuple[str, Any]]:
            for f in _files(paths):
                if method == "file":
                    yield f.name, service.receive_file(channel_id, f.read_bytes(), name=f.name)
                else:
                    yield f.name, service.receive_device(channel_id, f.read_bytes())

        _run(channel_id, db, work)

    return command


@click.command("csv")
@_PATHS
@_CHANNEL
@_DB
def ingest_csv(paths: tuple[Path, ...], channel_id: str, db: str | None) -> None:
    """Import CSV files through a csv channel's mapping / 通过通道映射导入 CSV 文件."""
    _each_file("file")(paths, channel_id, db)


@click.command("json")
@_PATHS
@_CHANNEL
@_DB
def ingest_json(paths: tuple[Path, ...], channel_id: str, db: str | None) -> None:
    """Import JSON or NDJSON files through a json channel's mapping / 导入 JSON、NDJSON 文件."""
    _each_file("file")(paths, channel_id, db)


@click.command("device")
@_PATHS
@_CHANNEL
@_DB
def ingest_device(paths: tuple[Path, ...], channel_id: str, db: str | None) -> None:
    """Import device readings (gateway JSON or PHD Bundle, one payload per file) /
    导入设备测量数据（每个文件一条网关 JSON 或 PHD Bundle）."""
    _each_file("device")(paths, channel_id, db)


@click.command("dicom")
@_PATHS
@_CHANNEL
@_DB
@click.option("--batch", default=200, show_default=True,
              help="Files written per transaction / 每个事务写入的文件数.")
def ingest_dicom(paths: tuple[Path, ...], channel_id: str, db: str | None, batch: int) -> None:
    """Read DICOM files' metadata (directories are walked) into ImagingStudy resources;
    pixel data is neither read nor stored / 读取 DICOM 元数据生成 ImagingStudy（不保存像素数据）."""
    files = _files(paths)

    def work(service: Any) -> Iterable[tuple[str, Any]]:
        for start in range(0, len(files), max(1, batch)):
            chunk = files[start:start + max(1, batch)]
            label = chunk[0].name if len(chunk) == 1 else f"{chunk[0].name} … {chunk[-1].name}"
            yield label, service.receive_dicom(channel_id,
                                               [(f.name, f.read_bytes()) for f in chunk])

    _run(channel_id, db, work)
