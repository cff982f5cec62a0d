"""Request id middleware (see apps/core/logging.py) and the Content-Security-Policy middleware."""

from __future__ import annotations

from collections.abc import Callable

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from apps.core.logging import new_request_id, set_request_id


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = new_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        # Not reset on the way out: Django logs 4xx/5xx after the middleware chain returns, and
        # those lines should carry the id too. The next request sets its own.
        set_request_id(request_id)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with one exception: paths in ``CSP_INLINE_STYLE_PATH_PREFIXES``
    (third-party pages: the Django admin, the API docs) may use inline styles. Scripts stay
    'self' only everywhere."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and request.path_info.startswith(tuple(settings.CSP_INLINE_STYLE_PATH_PREFIXES)):
            parts.update = {**(parts.update or {}), "style-src": ["'unsafe-inline'"]}
        return parts
