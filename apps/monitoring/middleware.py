"""Per-route request metrics: ``http.request`` (latency in ms, by route pattern, method, status class).

The middleware sits first in MIDDLEWARE so its timing covers the whole stack (every other
middleware, the URL resolver, the view, the template). It emits one event per request through
apps.core.metrics.emit (an append to an in-process buffer), so its cost is two clock reads, one
attribute lookup and the append: well under the issue's 0.3 ms (bench/monitoring.py measures it).

The route is the URL *pattern* that matched, never the raw path, so ``/inbox/c/7/`` and
``/inbox/c/8/`` are one series (``/inbox/c/<int:conversation_id>/``) and the number of series
stays bounded whatever clients ask for:

- Django's ``request.resolver_match.route`` already joins the patterns of every ``include()``
  level (``api/v1/`` + ``creators/<creator_id>``); a leading ``/`` is added;
- django-ninja operations are written the way the OpenAPI document writes them:
  ``/api/v1/creators/{creator_id}``;
- ``re_path`` patterns lose their anchors and their named groups become ``<name>``;
- a request that matched no pattern (a 404 from the resolver, an APPEND_SLASH redirect) is
  ``unmatched``.

Static files (served by WhiteNoise before the resolver) and the Prometheus scrape (/metrics) are
not recorded: they would drown the product's routes and measure the monitoring itself.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from apps.core.metrics import emit

UNMATCHED = "unmatched"
_STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
# Anything else a client sends as a method is one series, "other": clients do not choose series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
_DJANGO_PARAM = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)")


@lru_cache(maxsize=4096)  # a pure function of the (bounded) set of URL patterns
def route_label(route: str, ninja: bool = False) -> str:
    """The series name of a matched URL pattern (see the module docstring)."""
    label = _REGEX_GROUP.sub(r"<\1>", route)
    label = label.replace("^", "").replace("\\Z", "").rstrip("$")
    if ninja:
        label = _DJANGO_PARAM.sub(r"{\1}", label)
    return "/" + label


def request_route(request: HttpRequest) -> str:
    match = request.resolver_match
    if match is None:
        return UNMATCHED
    return route_label(match.route, getattr(match.func, "__module__", None) == "ninja.operation")


def status_class(status: int) -> str:
    return _STATUS_CLASSES[status // 100 - 1] if 100 <= status < 600 else "5xx"


class RequestMetricsMiddleware:
    """Times each request through the rest of the stack and emits ``http.request``. Sync and
    async capable: under daphne it runs in whichever mode the next handler has, so it never adds
    a thread hop of its own."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        static = "/" + settings.STATIC_URL.lstrip("/") if settings.STATIC_URL else "/static/"
        self.skip_prefixes = (static, "/metrics")
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        if request.path_info.startswith(self.skip_prefixes):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        self.record(request, response.status_code, started)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(self.skip_prefixes):
            return await self.get_response(request)
        started = time.perf_counter()
        response = await self.get_response(request)
        self.record(request, response.status_code, started)
        return response

    @staticmethod
    def record(request: HttpRequest, status: int, started: float) -> None:
        emit(
            "http.request",
            (time.perf_counter() - started) * 1000,
            "Milliseconds",
            {
                "route": request_route(request),
                "method": request.method if request.method in _METHODS else "other",
                "status": status_class(status),
            },
        )
