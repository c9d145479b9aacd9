"""``$import`` — bulk NDJSON import (the Bulk Data import pattern), and its status.

    POST /fhir/$import           Parameters listing NDJSON inputs (files in HUITONG_IMPORT_DIR)
                                 → 202, Content-Location: …/$import-status?job=ID
    GET  /fhir/$import-status?job=ID
                                 → 202 + X-Progress while running; 200 when complete, with
                                   per-file loaded / failed counts and errors by line number

The job runs in the background and is stored in the database (``ingest/bulk_import.py``),
so a server restart resumes it from each file's last committed line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huitong.fhir.errors import Category, FhirError, Issue
from huitong.fhir.outcome import operation_outcome
from huitong.ingest.bulk_import import BulkImporter
from huitong.server.request import FhirRequest, ServerContext
from huitong.server.response import FhirResponse

__all__ = ["bulk_import", "import_status", "importer_for"]


def importer_for(repo: Any, settings: Any, clock: Any, new_id: Any) -> BulkImporter:
    folder = getattr(settings, "import_dir", "") or ""
    # The plain repository: an import writes as the server, after the operator check.
    plain = getattr(repo, "repo", None) or repo
    return BulkImporter(plain, import_dir=Path(folder) if folder else None, clock=clock,
                        new_id=new_id)


def _require_operator() -> None:
    from huitong.access.consents import CURRENT_PRINCIPAL
    from huitong.server.api_support import OPERATOR_ROLES

    principal = CURRENT_PRINCIPAL.get(None)
    if principal is not None and principal.role.value not in OPERATOR_ROLES:
        raise FhirError(Category.FORBIDDEN,
                        "Only platform operators may run a bulk import / "
                        "仅平台运维人员可执行批量导入")


def bulk_import(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    _require_operator()
    importer = importer_for(ctx.repo, ctx.settings, ctx.clock, ctx.new_id)
    job_id = importer.start(req.json_body())
    importer.run_in_background(job_id)
    base = req.base_url.rstrip("/")
    return FhirResponse(
        202,
        operation_outcome([Issue(f"import job {job_id} accepted / 导入任务 {job_id} 已受理",
                                 severity="information", code="informational")]),
        headers={"Content-Location": f"{base}/$import-status?job={job_id}"},
    )


def import_status(ctx: ServerContext, req: FhirRequest) -> FhirResponse:
    _require_operator()
    job_id = next((v for k, v in req.params if k == "job"), None)
    if not job_id:
        raise FhirError(Category.INVALID, "job is required / 缺少 job 参数")
    importer = importer_for(ctx.repo, ctx.settings, ctx.clock, ctx.new_id)
    status = importer.status(job_id)
    issues = [
        Issue(f"{f['url']} line {e['line']}: {e['message']}", severity="error",
              code="invalid" if e["code"] == "invalid" else "processing")
        for f in status["files"] for e in f["errors"][:100]
    ]
    status["outcome"] = operation_outcome(issues or [Issue(
        "no errors / 无错误", severity="information", code="informational")])
    if status["status"] != "completed":
        done = sum(f["loaded"] + f["failed"] for f in status["files"])
        return FhirResponse(202, status, headers={"X-Progress": f"{done} resources processed"})
    return FhirResponse(200, status)
