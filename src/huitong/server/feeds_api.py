"""Feed doors of the integration engine under ``/api/ingest/channels/{id}`` (JSON answers):

    POST …/file     the body is a CSV, JSON or NDJSON file (``?name=`` names the upload)
                    → the row-level report
    POST …/device   a gateway JSON payload or a PHD Bundle → the reading's outcome
    POST …/dicom    ``application/dicom`` (one file) or ``multipart/related`` /
                    ``multipart/form-data`` (several files; RFC 2046 §5.1 —
                    https://www.rfc-editor.org/rfc/rfc2046#section-5.1) → the studies' outcome

Every answer is a :class:`~huitong.ingest.feed_intake.FeedOutcome` as JSON, with status 201
(new, written), 200 (already processed: nothing written again), 422 (stored in the error
queue, with the problems) or 503 (stored; a transient failure, retried by the engine).
Unknown channels and other failures are OperationOutcomes (server/errors.py), as in
:mod:`huitong.server.ingest_api`, whose operator authentication these routes share.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from huitong.fhir.errors import Category, FhirError
from huitong.ingest.feed_intake import FeedOutcome
from huitong.ingest.service import IngestService
from huitong.server.api_support import json_response as _json
from huitong.server.ingest_api import _body, _endpoint

__all__ = ["feed_routes", "split_multipart"]

_MAX_FILE_BYTES = 256 * 1024 * 1024  # a 100,000-row export is about 10 MB
_MAX_DEVICE_BYTES = 1024 * 1024
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_FILENAME = re.compile(rb'filename="([^"]*)"', re.IGNORECASE)


def _answer(outcome: FeedOutcome) -> Response:
    return _json(outcome.as_json(), outcome.http_status)


def split_multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """The parts of a multipart body as ``(file name, content)``, content byte-exact (binary
    DICOM may hold CR LF anywhere, so the body is cut at the boundary lines only). A part
    without a file name is named ``part-<n>``. Raises INVALID for a malformed body."""
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise FhirError(Category.INVALID,
                        "multipart body without a boundary / multipart 请求体缺少 boundary")
    delimiter = b"--" + found.group(1).strip().encode("latin-1")
    chunks = body.split(b"\r\n" + delimiter)
    first = chunks[0]
    if not first.startswith(delimiter):
        raise FhirError(Category.INVALID, "malformed multipart body / multipart 请求体格式错误")
    chunks[0] = first[len(delimiter):]
    parts: list[tuple[str, bytes]] = []
    for i, chunk in enumerate(chunks):
        if chunk.startswith(b"--"):
            break  # the close delimiter
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise FhirError(Category.INVALID,
                            "malformed multipart part / multipart 分段格式错误")
        name = _FILENAME.search(head)
        label = name.group(1).decode("utf-8", "replace") if name else ""
        parts.append((label or f"part-{i + 1}", content))
    if not parts:
        raise FhirError(Category.INVALID, "no files in the body / 请求体中没有文件")
    return parts


def feed_routes(service: IngestService, auth: Any = None) -> list[Route]:
    """The feed routes, bound to ``service``; with ``auth`` every call needs an operator's
    bearer token (as the rest of ``/api/ingest``)."""

    async def post_file(request: Request) -> Response:
        raw = await _body(request, _MAX_FILE_BYTES)
        if not raw.strip():
            raise FhirError(Category.INVALID, "empty file / 文件为空")
        name = request.query_params.get("name") or None
        outcome = await run_in_threadpool(service.receive_file, request.path_params["id"],
                                          raw, name=name)
        return _answer(outcome)

    async def post_device(request: Request) -> Response:
        raw = await _body(request, _MAX_DEVICE_BYTES)
        if not raw.strip():
            raise FhirError(Category.INVALID, "empty payload / 数据为空")
        outcome = await run_in_threadpool(service.receive_device, request.path_params["id"],
                                          raw)
        return _answer(outcome)

    async def post_dicom(request: Request) -> Response:
        raw = await _body(request, _MAX_FILE_BYTES)
        content_type = request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/"):
            files = split_multipart(raw, content_type)
        elif raw:
            files = [(request.query_params.get("name") or "upload.dcm", raw)]
        else:
            raise FhirError(Category.INVALID, "empty body / 请求体为空")
        outcome = await run_in_threadpool(service.receive_dicom, request.path_params["id"],
                                          files)
        return _answer(outcome)

    def route(path: str, work: Callable[[Request], Awaitable[Response]]) -> Route:
        return Route(f"/api/ingest/channels/{{id}}/{path}", _endpoint(work, auth),
                     methods=["POST"])

    return [route("file", post_file), route("device", post_device),
            route("dicom", post_dicom)]
