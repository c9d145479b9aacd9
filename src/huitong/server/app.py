"""The ASGI application: the FHIR REST API at ``/fhir`` — https://hl7.org/fhir/R4/http.html.

Small on purpose: a few Starlette routes, one FHIR endpoint that reads the request (format,
body size), dispatches through :mod:`huitong.server.routing` in a worker thread (the
repository is synchronous) and renders the :class:`~huitong.server.response.FhirResponse`.
Every failure — ours, Starlette's 404/405, or an unexpected exception — leaves as an
OperationOutcome (:mod:`huitong.server.errors`); no input produces an unhandled 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import itertools
import logging
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import huitong
from huitong.access.auth_settings import AuthSettings
from huitong.access.consents import CURRENT_PRINCIPAL, install_consent_guard
from huitong.access.events import discard_event
from huitong.access.facts_cache import prune_changes
from huitong.access.policy import PolicySettings
from huitong.access.service import AuthService
from huitong.audit.recording import AuditRecorder
from huitong.audit.service import AuditService
from huitong.clock import Clock, IdFactory, MonotonicClock, new_uuid
from huitong.config import Settings
from huitong.fhir.errors import Category, FhirError
from huitong.ingest.channels import Channel
from huitong.ingest.hl7v2.mapping import MergeRequest
from huitong.ingest.service import IngestService, IngestSettings
from huitong.mpi.service import IdentityService
from huitong.quality.service import QualityService
from huitong.runtime import tune_collector
from huitong.server.audit_api import audit_routes, audit_worker
from huitong.server.auth_routes import auth_routes
from huitong.server.authn import authenticate_request, www_authenticate
from huitong.server.authorization import AuthorizedRepository
from huitong.server.bundle import conditional_locks, run_transaction
from huitong.server.consent_api import ConsentServices, consent_routes, region_policy
from huitong.server.errors import error_response, internal_error_response, status_error
from huitong.server.fast_read import AuditAppends, FastReads
from huitong.server.feeds_api import feed_routes
from huitong.server.identity_api import identity_routes
from huitong.server.ingest_api import in_transaction, ingest_routes
from huitong.server.negotiation import (
    FHIR_JSON,
    check_accept,
    check_body_type,
    dump_json,
    media_type,
)
from huitong.server.openapi import openapi_document
from huitong.server.operations.terminology import terminology_for
from huitong.server.quality_api import quality_routes
from huitong.server.rate_limit import rate_limit_middleware
from huitong.server.request import FhirRequest, ServerContext, parse_query, reject_nul
from huitong.server.response import FhirResponse, etag, http_date
from huitong.server.routing import match
from huitong.server.terminology_api import terminology_routes
from huitong.store.repository import Repository
from huitong.terminology.mapping.service import MappingWorkbench
from huitong.terminology.write_path import TranslationService
from huitong.web import WebServices, web_routes

__all__ = ["FHIR_PATH", "create_app"]

log = logging.getLogger("huitong.server")

FHIR_PATH = "/fhir"

# The FHIR handlers' worker threads (the repository is synchronous). A plain executor, not
# Starlette's run_in_threadpool: anyio's capacity limiter, cancel scope and checkpoints
# around each call measured ~0.5 ms of CPU per request, as much as a read itself.
# 40 threads as anyio's default; each request still takes a pooled database connection.
_EXECUTOR = ThreadPoolExecutor(max_workers=40, thread_name_prefix="huitong-fhir")
_T = TypeVar("_T")


async def in_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` in a worker thread, with this task's context variables (the request's
    principal) visible there."""
    call = contextvars.copy_context().run
    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, call, fn, *args)


def _request_ids() -> Callable[[], str]:
    """Request ids for audit entries: a random prefix per server process and a counter,
    32 hex digits like a UUID. uuid4() reads the OS's random source on every call, which
    was a fifth of the cost of building a read's entry; the ids only need to be unique."""
    prefix = os.urandom(8).hex()
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter):016x}"


_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_XML = frozenset({"application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir"})


def create_app(
    repo: Repository,
    settings: Settings,
    *,
    clock: Clock | None = None,
    new_id: IdFactory | None = None,
) -> Starlette:
    """The Huitong FHIR server over ``repo``. ``clock`` (µs since the epoch) stamps response
    Bundles; ``new_id`` mints the ids a transaction assigns in advance. Both default to the
    repository's own, so ids and times look the same whichever path wrote a resource."""
    ctx = ServerContext(
        repo,
        settings,
        clock or getattr(repo, "clock", None) or MonotonicClock(),
        new_id or getattr(repo, "new_id", None) or new_uuid,
    )

    # The audit log (issue 5): entries commit with the writes they record, reads are
    # appended before their data leaves; handlers read through the recording view.
    audit: AuditRecorder | None = None
    if settings.audit != "off":
        audit = AuditRecorder(
            AuditService(
                repo,
                clock=ctx.clock,
                origin=settings.base_url or "huitong",
                signing_key_file=settings.audit_signing_key,
            ),
            local_base=getattr(repo, "local_base", None) or settings.base_url or None,
            request_ids=_request_ids(),
        )
        audit.install(repo)
        ctx = dataclasses.replace(ctx, repo=audit.reading_view(repo))

    async def fhir(request: Request) -> Response:
        return await _handle(ctx, request, audit, policy)

    async def openapi(request: Request) -> Response:
        return _render(
            FhirResponse(200, openapi_document(_base_url(ctx, request))),
            False,
            "",
            head=request.method == "HEAD",
        )

    async def landing(request: Request) -> Response:
        base = _base_url(ctx, request)
        return JSONResponse(
            {
                "name": "Huitong (汇通)",
                "version": huitong.__version__,
                "fhir": base,
                "metadata": f"{base}/metadata",
                "openapi": f"{base}/openapi.json",
            }
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "database": repo.dialect})

    def submit(bundle: dict[str, Any], before_commit: Any) -> dict[str, Any]:
        # Every non-FHIR source writes through the same transaction executor as POST /fhir.
        return run_transaction(ctx, bundle, before_commit, base_url=settings.base_url or "")

    def submit_in(tx: Any, bundle: dict[str, Any], before_commit: Any) -> dict[str, Any]:
        # The same executor inside a transaction the batched HL7 v2 intake opened.
        return run_transaction(
            in_transaction(ctx, tx), bundle, before_commit, base_url=settings.base_url or ""
        )

    identity = IdentityService(repo, clock=ctx.clock, new_id=ctx.new_id)
    if settings.mpi != "off":
        identity.install()
    # Codes and units are translated before validation, so quality checks what is stored.
    translation = TranslationService(repo, clock=ctx.clock)
    if settings.translate != "off":
        translation.install()
    # After the identity service: a new Patient's golden record exists when quality runs.
    quality = QualityService(
        repo, clock=ctx.clock, identity=identity, config_file=settings.quality_config or None
    )
    if settings.quality != "off":
        quality.install()

    def merge(request: MergeRequest, channel: Channel) -> bool:
        return identity.merge_by_identifiers(
            request.surviving,
            request.merged,
            by=f"hl7v2:{channel.id}",
            reason=request.reason or "HL7 v2 merge",
        )

    ingest = IngestService(
        repo,
        submit,
        ctx.clock,
        ctx.new_id,
        IngestSettings(retention_days=settings.ingest_retention_days),
        on_merge=merge,
        submit_in=submit_in,
        lock_in=lambda tx, bundles: tx.lock_many(
            conditional_locks(bundles, base_url=settings.base_url or "")),
    )

    auth = AuthService(
        repo,
        AuthSettings.from_env(),
        clock=ctx.clock,
        new_id=ctx.new_id,
        on_event=audit.on_auth_event if audit is not None else discard_event,
    )
    ctx = dataclasses.replace(
        ctx,
        auth=auth if settings.auth != "off" else None,
        identity=identity if settings.mpi != "off" else None,
    )
    # Consent (issue 5): the region's default, the ownership guard on Consent writes, share
    # codes and break-glass; ``consent.on_event`` is where the audit log subscribes.
    policy = region_policy(settings)
    consent = ConsentServices(repo, ctx.clock, ctx.new_id, policy, settings.break_glass_hours,
                              share_code_key_file=settings.share_code_key)  # fmt: skip
    install_consent_guard(repo, consent.emit)
    if audit is not None:  # consent changes, break-glass, share codes: audited in their tx
        consent.on_event = audit.on_consent_event
        audit.policy = policy  # the opt-out default is an access basis of its own
    routes = [
        Route("/", landing, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route(f"{FHIR_PATH}/openapi.json", openapi, methods=["GET"]),
        # before the FHIR catch-all, so /fhir/.well-known/smart-configuration reaches them
        *auth_routes(auth),
        Route(FHIR_PATH, fhir, methods=_METHODS),
        Route(FHIR_PATH + "/{path:path}", fhir, methods=_METHODS),
        *ingest_routes(ingest, ctx.auth, audit),
        *feed_routes(ingest, ctx.auth),
        *identity_routes(identity, ctx.auth),
        *consent_routes(consent, ctx.auth),
    ]
    if settings.quality != "off":
        routes += quality_routes(
            quality, ctx.auth, audit.export_recorder("quality-report") if audit else None
        )
    if audit is not None:
        routes += audit_routes(audit.service, ctx.auth)
    if settings.translate != "off":
        routes += terminology_routes(
            MappingWorkbench(repo, translation, terminology_for(ctx), clock=ctx.clock),
            ctx.auth,
        )
    # With authentication on the pages sign people in (huitong.web.session) and read as
    # them; with it off they are the open demo.
    routes += web_routes(
        WebServices(
            repo=repo,
            ingest=ingest,
            clock=ctx.clock,
            identity=identity if settings.mpi != "off" else None,
            quality=quality if settings.quality != "off" else None,
            auth=ctx.auth,
            share_codes=consent.share_codes,
            break_glass=consent.break_glass,
            consent=consent,
            policy=policy,
            audit=audit,
        )
    )
    middleware = [Middleware(_OutcomeOnCrash), *rate_limit_middleware(settings, auth)]
    # An engine that can read on the event loop says so with a method of its class.
    async_reads = getattr(type(repo), "async_reads", None)
    appends = None
    if ctx.auth is None and async_reads is not None:
        # Reads by id on the event loop (server/fast_read.py). With authentication on, a
        # read goes through the principal's view on the general path.
        appends = AuditAppends(audit.service, _EXECUTOR) if audit is not None else None
        middleware.append(Middleware(
            FastReads, reads=async_reads(repo), render=_render_error, audit=audit,
            appends=appends, prefix=FHIR_PATH + "/",
        ))  # fmt: skip
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_exception},
        middleware=middleware,
        lifespan=lambda app: _lifespan(
            ingest, settings, audit, appends, quality if settings.quality != "off" else None
        ),
    )
    app.state.audit_appends = appends
    app.state.ingest = ingest
    app.state.identity = identity
    app.state.consent = consent
    app.state.translation = translation
    return app


@contextlib.asynccontextmanager
async def _lifespan(
    ingest: IngestService, settings: Settings, audit: AuditRecorder | None = None,
    appends: AuditAppends | None = None, quality: QualityService | None = None,
) -> AsyncIterator[None]:
    """Background work of a running server: the ingest retry worker (queued messages whose
    time has come, stale ones, raw-content retention), the MLLP listener if configured, and
    the folding of the quality counters' ledger."""
    from huitong.ingest.batcher import Batcher
    from huitong.ingest.mllp import start_mllp_server
    from huitong.ingest.mqtt_runtime import start_mqtt_channels

    # Start-up objects (definitions, rule tables, unit registries) live for the whole
    # process: move them out of the collector's view so full collections during ingest do
    # not walk them again and again (they measured 150-300 ms each); and collect less often
    # (huitong/runtime.py).
    tune_collector()
    stop = asyncio.Event()
    worker = asyncio.create_task(_retry_worker(ingest, stop))
    # Bulk imports a restart interrupted continue from their last committed lines.
    from huitong.server.operations.bulk_import import importer_for

    importer = importer_for(ingest.repo, settings, ingest.clock, ingest.new_id)
    try:
        for job_id in await run_in_threadpool(importer.unfinished):
            importer.run_in_background(job_id)
    except Exception as exc:  # database away or not upgraded: the server still starts
        log.warning("bulk import jobs not resumed: %s", type(exc).__name__)
    sequencer = None
    if audit is not None:  # gives committed audit entries their tree positions
        sequencer = asyncio.create_task(
            audit_worker(audit.service, stop, settings.audit_checkpoint_seconds)
        )
    # rows of access_changes every kept access fact has seen (access/facts_cache.py)
    pruner = asyncio.create_task(prune_changes(ingest.repo, stop))
    folder = asyncio.create_task(_fold_quality_counts(quality, stop)) if quality else None
    # With several workers each takes a share of every MQTT subscription, under a client id
    # of its own (two connections with one id would keep taking the session from each other).
    index = int(settings.worker_index) if settings.worker_index.strip() else None
    mqtt = start_mqtt_channels(ingest, stop, in_flight=settings.mqtt_in_flight, worker=index)
    listener = None
    if settings.mllp_port:
        # Messages arriving together on any connections are stored and written as one
        # group (ingest/batcher.py); each ACK still waits for its group's commits.
        batcher = Batcher(ingest.receive_hl7v2_batch, max_batch=settings.mllp_batch)

        async def handle(payload: bytes, peer: object) -> list[bytes] | bytes | None:
            if settings.mllp_batch <= 1:
                result = await run_in_threadpool(ingest.receive_hl7v2, payload)
            else:
                result = await batcher.submit(payload)
            return result.acks or None

        listener = await start_mllp_server(
            handle, settings.host, settings.mllp_port, reuse_port=True
        )
        log.info("MLLP listener on %s:%s", settings.host, listener.port)
    try:
        yield
    finally:
        stop.set()
        await mqtt.wait()
        if listener is not None:
            listener.close()
            await listener.wait_closed()
            await batcher.close()
        worker.cancel()
        pruner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        with contextlib.suppress(asyncio.CancelledError):
            await pruner
        if folder is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await folder
        if sequencer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await sequencer
        if appends is not None:  # the audited reads' own connection (audit/pg_appends.py)
            await appends.close()


async def _fold_quality_counts(
    quality: QualityService, stop: asyncio.Event, every_s: float = 10.0
) -> None:
    """Fold the quality counters' ledger into their totals every ``every_s`` seconds and at
    stop (reads add the unfolded rows, so this only keeps the ledger short). Each worker
    runs one; they take different rows."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        try:
            await run_in_threadpool(quality.fold_counts)
        except FhirError as err:  # database away: try again later, quietly
            log.warning("quality counters not folded: %s", err.category.value)
        except Exception:
            log.exception("quality counters not folded")
        if stop.is_set():
            return


async def _retry_worker(ingest: IngestService, stop: asyncio.Event) -> None:
    rounds = 0
    ingest.hl7v2.background_refresh = True
    while not stop.is_set():
        try:
            # Channel changes from the CLI or another worker reach this process here, so an
            # inbound message never waits on the database just to learn its channel.
            await run_in_threadpool(ingest.hl7v2.reload_channels)
            tried = await run_in_threadpool(ingest.run_due)
            # Enhanced-mode application ACKs owed to senders' return addresses.
            tried += await ingest.deliver_app_acks(run=run_in_threadpool)
            if rounds % 3600 == 0:
                await run_in_threadpool(ingest.purge)
        except FhirError as err:  # database away: keep trying, quietly
            log.warning("ingest retry worker: %s", err.category.value)
            tried = 0
        except Exception:
            log.exception("ingest retry worker failed")
            tried = 0
        rounds += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.2 if tried else 1.0)


# Readable without a token: what a client needs to find out how to get one.
_PUBLIC_PATHS = frozenset({"metadata", ".well-known/smart-configuration"})


async def _require_principal(ctx: ServerContext, request: Request) -> Any:
    """The authenticated principal, or UNAUTHORIZED (401 with WWW-Authenticate).
    Authorization (what this principal may see) is enforced by
    :class:`~huitong.server.authorization.AuthorizedRepository`."""
    principal = await in_thread(authenticate_request, request, ctx.auth)
    if principal is None:
        raise FhirError(
            Category.UNAUTHORIZED,
            "This server requires an OAuth 2 bearer token / 需要提供 OAuth 2 访问令牌",
        )
    return principal


def _base_url(ctx: ServerContext, request: Request) -> str:
    if ctx.settings.base_url:
        return ctx.settings.base_url.rstrip("/")
    return str(request.base_url).rstrip("/") + FHIR_PATH


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (TOO_LARGE, 413) as soon as it exceeds ``limit`` bytes — by
    Content-Length before reading, and while reading for chunked bodies."""
    declared = request.headers.get("content-length", "")
    if declared in ("", "0") and "transfer-encoding" not in request.headers:
        return b""  # no body (reads, searches): no receive() round trip through the loop
    if declared.isdigit() and int(declared) > limit:
        raise FhirError(Category.TOO_LARGE, f"the body exceeds the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FhirError(Category.TOO_LARGE, f"the body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def _handle(
    ctx: ServerContext,
    request: Request,
    audit: AuditRecorder | None = None,
    policy: PolicySettings | None = None,
) -> Response:
    method = request.method
    path = request.path_params.get("path", "")
    params = parse_query(request.scope.get("query_string", b"").decode("utf-8", "replace"))
    pretty = any(k == "_pretty" and v == "true" for k, v in params)
    base = _base_url(ctx, request)
    where = f"{method} /{path.split('?')[0][:200]}"
    try:
        formats = [v for k, v in params if k == "_format"]
        check_accept(formats[-1] if formats else None, request.headers.get("accept"))
        body = await _read_body(request, ctx.settings.max_body_bytes)
        content_type = request.headers.get("content-type")
        if body and media_type(content_type) in _XML:
            check_body_type(content_type, ("json",))
        reject_nul(params, body)
        req = FhirRequest(method, path, params, request.headers, body, base)
        interaction, req.path_params = match(method, path)
        handler_ctx = ctx
        principal = None
        if ctx.auth is not None and path not in _PUBLIC_PATHS:
            principal = await _require_principal(ctx, request)
            # Consent writes are checked against the caller (access/consents.py)
            CURRENT_PRINCIPAL.set(principal)
            # every read and write of this request goes through the principal's view
            handler_ctx = dataclasses.replace(
                ctx,
                repo=AuthorizedRepository(
                    ctx.repo, principal, ctx.clock, policy or PolicySettings()
                ),
            )
        if audit is not None:  # the handler, audited (see huitong.audit.recording)
            address = request.client.host if request.client else None
            resp = await in_thread(audit.run, interaction, handler_ctx, req, principal, address)
        else:
            resp = await in_thread(interaction.handler, handler_ctx, req)
    except FhirError as err:
        resp = error_response(err)
        if err.category is Category.UNAUTHORIZED:
            resp.headers["WWW-Authenticate"] = www_authenticate(err)
    except Exception as exc:
        resp = internal_error_response(exc, where=where)
    try:
        return _render(resp, pretty, base, head=method == "HEAD")
    except Exception as exc:
        return _render(internal_error_response(exc, where=f"rendering {where}"), False, base)


def _render(resp: FhirResponse, pretty: bool, base: str, *, head: bool = False) -> Response:
    headers = dict(resp.headers)
    if resp.stored is not None:
        headers["ETag"] = etag(resp.stored.version_id)
        headers["Last-Modified"] = http_date(resp.stored.last_updated)
    if resp.location:
        headers["Location"] = f"{base}/{resp.location}"
    if resp.status in (204, 304):
        return Response(status_code=resp.status, headers=headers)
    content = b"" if resp.body is None else dump_json(resp.body, pretty=pretty)
    if head:
        headers["Content-Length"] = str(len(content))
        content = b""
    return Response(content, resp.status, headers, media_type=FHIR_JSON)


def _render_error(resp: FhirResponse) -> Response:
    return _render(resp, False, "")


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (paths outside the FHIR routes) as OperationOutcomes."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: "not found", 405: "method not allowed"}.get(status, "request failed")
    return _render(error_response(status_error(status, message)), False, "")


class _OutcomeOnCrash:
    """Last line of defence: an exception that escapes everything else becomes a 500
    OperationOutcome (if the response has not started) instead of a bare text error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            resp = internal_error_response(exc, where=f"{scope.get('method')} (middleware)")
            await _render(resp, False, "")(scope, receive, send)
