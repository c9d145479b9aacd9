"""The pages' shared machinery: the services, the renderer, and :meth:`Site.endpoint`, which
wraps every page handler so that failures become bilingual error pages — a category's
status for a :class:`FhirError`, a plain 500 page (logged without personal data) for a bug.
No input reaches the browser as an unhandled exception.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from huitong.fhir.errors import FhirError
from huitong.web.display import CST
from huitong.web.rendering import Pages, View, view_for
from huitong.web.services import WebServices

__all__ = ["Handler", "Site"]

log = logging.getLogger("huitong.web")

T = TypeVar("T")
Handler = Callable[["Site", Request, View], Awaitable[Response]]


class Site:
    def __init__(self, services: WebServices) -> None:
        self.services = services
        self.pages = Pages()

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            view = view_for(request, self.services.secret)
            try:
                return await handler(self, request, view)
            except FhirError as err:
                return self.pages.failure(view, err)
            except Exception as exc:
                # The type only: messages can carry personal data.
                log.error("web page %s failed: %s", request.url.path, type(exc).__name__,
                          exc_info=log.isEnabledFor(logging.DEBUG))
                return self.pages.error(view, 500)

        run.__name__ = handler.__name__
        return run

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a (synchronous) service call in the thread pool."""
        return await run_in_threadpool(fn, *args, **kwargs)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.services.clock() / 1_000_000, UTC)

    def today(self) -> date:
        return self.now().astimezone(CST).date()
