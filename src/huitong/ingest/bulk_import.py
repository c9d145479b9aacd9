"""Bulk NDJSON import (the Bulk Data ``$import`` pattern), resumable across restarts.

A job lists NDJSON files the server may read (only under the configured import directory,
``HUITONG_IMPORT_DIR``). Each file is loaded in chunks; a chunk's resources and the file's
progress (``line``: the last line committed) change in ONE database transaction, so after a
crash or restart the job continues at the first line not yet committed — nothing is loaded
twice and nothing is skipped. Writes are keyed on the ids in the NDJSON (update-or-create at
that id, through the same write path as everything else: validation, indexing, identity and
quality), so even a line taken again creates no duplicate.

Bad lines (not JSON, no id, a type other than the file's, refused by validation or a
quality rule) are reported with their line number and the rest of the file is kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import orjson

from huitong.clock import Clock, IdFactory
from huitong.fhir.errors import Category, FhirError
from huitong.ingest.redact import safe_exception
from huitong.store.repository import Repository, Transaction

__all__ = ["BulkImporter", "ImportInput", "parse_import_parameters"]

log = logging.getLogger("huitong.ingest.bulk")

_MAX_ERRORS = 1000  # per file: enough to fix a feed, bounded for a broken one
_running: set[str] = set()  # jobs this process is running (a second start is a no-op)
_running_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class ImportInput:
    url: str
    path: Path
    type: str | None


def _invalid(en: str, zh: str) -> FhirError:
    return FhirError(Category.INVALID, f"{en} / {zh}")


def _resolve(url: str, import_dir: Path) -> Path:
    """The local file an input URL names, which must lie inside ``import_dir``."""
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        raise FhirError(Category.NOT_SUPPORTED,
                        f"input {url}: only files in the import directory can be read / "
                        f"输入 {url}：只能读取导入目录中的文件")
    raw = unquote(parsed.path) if parsed.scheme == "file" else url
    candidate = Path(raw)
    path = (candidate if candidate.is_absolute() else import_dir / candidate).resolve()
    if not path.is_relative_to(import_dir.resolve()):
        raise FhirError(Category.FORBIDDEN,
                        f"input {url} is outside the import directory / "
                        f"输入 {url} 不在导入目录中")
    if not path.is_file():
        raise _invalid(f"input {url} does not exist", f"输入 {url} 不存在")
    return path


def parse_import_parameters(body: Any, import_dir: Path) -> list[ImportInput]:
    """The inputs of a ``$import`` Parameters resource::

        {"resourceType": "Parameters", "parameter": [
          {"name": "inputFormat", "valueCode": "application/fhir+ndjson"},
          {"name": "input", "part": [{"name": "type", "valueCode": "Patient"},
                                     {"name": "url", "valueUri": "Patient.ndjson"}]}]}
    """
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise _invalid("$import expects a Parameters resource", "$import 需要 Parameters 资源")
    inputs: list[ImportInput] = []
    for param in body.get("parameter") or []:
        if not isinstance(param, dict):
            continue
        name = param.get("name")
        if name == "inputFormat":
            fmt = param.get("valueCode") or param.get("valueString")
            if fmt not in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
                raise FhirError(Category.NOT_SUPPORTED,
                                f"inputFormat {fmt} is not supported (NDJSON only) / "
                                f"不支持的输入格式 {fmt}（仅支持 NDJSON）")
        if name != "input":
            continue
        parts = {p.get("name"): p for p in param.get("part") or [] if isinstance(p, dict)}
        url_part = parts.get("url") or {}
        url = (url_part.get("valueUri") or url_part.get("valueUrl")
               or url_part.get("valueString"))
        if not isinstance(url, str) or not url:
            raise _invalid("every input needs a url", "每个输入都需要 url")
        type_part = parts.get("type") or {}
        rtype = type_part.get("valueCode") or type_part.get("valueString")
        inputs.append(ImportInput(url, _resolve(url, import_dir),
                                  rtype if isinstance(rtype, str) else None))
    if not inputs:
        raise _invalid("$import needs at least one input", "$import 至少需要一个输入")
    return inputs


def _lines(path: Path, after: int) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, content) of the non-empty lines after line ``after``."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if number <= after:
                continue
            stripped = line.strip()
            if stripped:
                yield number, stripped


class BulkImporter:
    """Jobs in ``bulk_import_jobs`` / ``bulk_import_files``; see the module docstring."""

    def __init__(self, repo: Repository, *, import_dir: Path | None, clock: Clock,
                 new_id: IdFactory, chunk: int = 200) -> None:
        self.repo = repo
        self.import_dir = import_dir
        self.clock = clock
        self.new_id = new_id
        self.chunk = max(1, chunk)

    # -- jobs ------------------------------------------------------------------------
    def start(self, parameters: Any) -> str:
        """Record a job for the inputs of a Parameters body; returns its id (not run yet)."""
        if self.import_dir is None:
            raise FhirError(Category.NOT_SUPPORTED,
                            "bulk import is off: no import directory is configured "
                            "(HUITONG_IMPORT_DIR) / 未配置导入目录（HUITONG_IMPORT_DIR），"
                            "批量导入不可用")
        inputs = parse_import_parameters(parameters, self.import_dir)
        job_id = self.new_id()
        now = self.clock()
        with self.repo.transaction() as tx:
            tx.execute("INSERT INTO bulk_import_jobs (id, created_at, updated_at, status) "
                       "VALUES (?, ?, ?, ?)", (job_id, now, now, "in-progress"))
            for position, item in enumerate(inputs):
                tx.execute("INSERT INTO bulk_import_files (job_id, position, url, path, type) "
                           "VALUES (?, ?, ?, ?, ?)",
                           (job_id, position, item.url, str(item.path), item.type))
        return job_id

    def unfinished(self) -> list[str]:
        rows = self.repo.query("SELECT id FROM bulk_import_jobs WHERE status = ? "
                               "ORDER BY created_at", ("in-progress",))
        return [r[0] for r in rows]

    def run_in_background(self, job_id: str) -> threading.Thread | None:
        """Run the job in a daemon thread unless this process already runs it."""
        with _running_lock:
            if job_id in _running:
                return None
            _running.add(job_id)

        def work() -> None:
            try:
                self.run(job_id)
            except Exception as exc:  # type and frames only: NDJSON lines are patient data
                log.error("bulk import job %s stopped (%s); it resumes on the next start",
                          job_id, safe_exception(exc))
            finally:
                with _running_lock:
                    _running.discard(job_id)

        thread = threading.Thread(target=work, name=f"import-{job_id}", daemon=True)
        thread.start()
        return thread

    def run(self, job_id: str) -> None:
        """Load every unfinished file of the job from its last committed line."""
        files = self.repo.query(
            "SELECT position, path, type, line FROM bulk_import_files "
            "WHERE job_id = ? AND done = 0 ORDER BY position", (job_id,))
        for position, path, rtype, line in files:
            self._load_file(job_id, int(position), Path(path), rtype, int(line))
        now = self.clock()
        with self.repo.transaction() as tx:
            tx.execute("UPDATE bulk_import_jobs SET status = ?, finished_at = ?, updated_at = ? "
                       "WHERE id = ?", ("completed", now, now, job_id))

    def _load_file(self, job_id: str, position: int, path: Path, rtype: str | None,
                   after: int) -> None:
        batch: list[tuple[int, bytes]] = []
        for item in _lines(path, after):
            batch.append(item)
            if len(batch) >= self.chunk:
                self._commit_chunk(job_id, position, rtype, batch)
                batch = []
        last = self._commit_chunk(job_id, position, rtype, batch, done=True)
        log.info("bulk import %s file %d done at line %d", job_id, position, last)

    def _commit_chunk(self, job_id: str, position: int, rtype: str | None,
                      batch: list[tuple[int, bytes]], *, done: bool = False) -> int:
        try:
            with self.repo.transaction() as tx:
                loaded, errors = self._write(tx, rtype, batch)
                self._progress(tx, job_id, position, batch, loaded, errors, done)
        except FhirError as err:
            if err.category is Category.UNAVAILABLE:
                raise  # the job stops here and resumes from its last committed line
            if len(batch) > 1:
                # A database-level failure of one line spoilt the chunk's transaction:
                # take the lines one at a time so only the bad one is reported.
                for i, item in enumerate(batch):
                    self._commit_chunk(job_id, position, rtype, [item],
                                       done=done and i == len(batch) - 1)
            else:
                error = {"line": batch[0][0] if batch else 0, "code": err.category.value,
                         "message": err.message}
                with self.repo.transaction() as tx:
                    self._progress(tx, job_id, position, batch, 0, [error], done)
        return batch[-1][0] if batch else 0

    def _write(self, tx: Transaction, rtype: str | None, batch: list[tuple[int, bytes]]
               ) -> tuple[int, list[dict[str, Any]]]:
        loaded = 0
        errors: list[dict[str, Any]] = []
        for number, line in batch:
            try:
                resource = orjson.loads(line)
                if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
                    raise _invalid("each line needs a resource with an id (imports are keyed "
                                   "on it)", "每行须为带 id 的资源（导入以 id 为键）")
                if rtype and resource.get("resourceType") != rtype:
                    raise _invalid(f"expected a {rtype}, found {resource.get('resourceType')}",
                                   f"应为 {rtype}，实为 {resource.get('resourceType')}")
                tx.update(resource)
                loaded += 1
            except orjson.JSONDecodeError:
                errors.append({"line": number, "code": "invalid",
                               "message": "not a JSON object / 不是 JSON 对象"})
            except FhirError as err:
                errors.append({"line": number, "code": err.category.value,
                               "message": err.message})
        return loaded, errors

    def _progress(self, tx: Transaction, job_id: str, position: int,
                  batch: list[tuple[int, bytes]], loaded: int, errors: list[dict[str, Any]],
                  done: bool) -> None:
        now = self.clock()
        if errors:
            row = tx.execute("SELECT errors FROM bulk_import_files WHERE job_id = ? "
                             "AND position = ?", (job_id, position))
            kept = orjson.loads(row[0][0]) if row and row[0][0] else []
            kept = (kept + errors)[:_MAX_ERRORS]
        if batch:
            tx.execute(
                "UPDATE bulk_import_files SET line = ?, loaded = loaded + ?, "
                "failed = failed + ?" + (", errors = ?" if errors else "")
                + " WHERE job_id = ? AND position = ?",
                (batch[-1][0], loaded, len(errors),
                 *((orjson.dumps(kept).decode(),) if errors else ()), job_id, position),
            )
        if done:
            tx.execute("UPDATE bulk_import_files SET done = 1 WHERE job_id = ? AND position = ?",
                       (job_id, position))
        tx.execute("UPDATE bulk_import_jobs SET updated_at = ? WHERE id = ?", (now, job_id))

    # -- status ----------------------------------------------------------------------
    def status(self, job_id: str) -> dict[str, Any]:
        """Progress and per-file outcome (loaded, failed, errors with line numbers)."""
        jobs = self.repo.query("SELECT status, created_at, finished_at FROM bulk_import_jobs "
                               "WHERE id = ?", (job_id,))
        if not jobs:
            raise FhirError(Category.NOT_FOUND,
                            f"no import job {job_id} / 没有编号为 {job_id} 的导入任务")
        status, created, finished = jobs[0]
        files = self.repo.query(
            "SELECT url, type, line, loaded, failed, errors, done FROM bulk_import_files "
            "WHERE job_id = ? ORDER BY position", (job_id,))
        return {
            "id": job_id, "status": status, "createdAt": int(created),
            "finishedAt": int(finished) if finished is not None else None,
            "files": [
                {"url": url, "type": rtype, "linesCommitted": int(line),
                 "loaded": int(loaded), "failed": int(failed), "done": bool(done),
                 "errors": orjson.loads(errors) if errors else []}
                for url, rtype, line, loaded, failed, errors, done in files
            ],
        }
