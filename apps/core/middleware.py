"""Request id middleware (see apps/core/logging.py), the Content-Security-Policy middleware, the
refusal of NUL characters in request text, and the short path of machine endpoints."""

from __future__ import annotations

from collections.abc import Callable

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.urls import Resolver404, get_resolver

from apps.core.logging import get_request_id, new_request_id, set_request_id


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


class MachineEndpointMiddleware:
    """Endpoints that machines call (a provider's webhooks) skip the member-facing middleware.

    ``MACHINE_ENDPOINT_URLCONFS`` maps a path prefix to a URLconf of its own (for the platforms'
    webhooks: apps/integrations/webhook_urls.py). A request under the prefix that this URLconf
    resolves to a ``csrf_exempt`` view is answered here, by that view: what sits before this
    middleware in MIDDLEWARE still applies (request metrics, security headers, CSP, the request
    id), and so do the host check, ``X-Frame-Options`` and the refusal of NUL text (as JSON).
    Skipped: sessions, CSRF (such views are exempt anyway), authentication, OTP, messages, htmx,
    tenancy, two-factor, preferences, axes, plan gates, and the walk through every app's URL
    patterns; together they were most of a webhook's cost (docs/benchmarks.md, "Integrations
    webhooks"). Anything else (no match, a view that is not exempt) takes the whole stack. A view
    here has no ``request.user``, session or tenant and answers its own errors.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.urlconfs = tuple(settings.MACHINE_ENDPOINT_URLCONFS.items())

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        path = request.path_info
        for prefix, urlconf in self.urlconfs:
            if path.startswith(prefix):
                try:
                    match = get_resolver(urlconf).resolve(path)
                except Resolver404:
                    break
                if getattr(match.func, "csrf_exempt", False):
                    return self._answer(request, match)
                break
        return self.get_response(request)

    @staticmethod
    def _answer(request: HttpRequest, match) -> HttpResponseBase:
        request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it on the long path
        request.resolver_match = match
        try:
            if RejectNulMiddleware._has_nul(request):
                error = {"error": "bad_request", "message": RejectNulMiddleware.MESSAGE}
                return JsonResponse(error, status=400)
            response = match.func(request, *match.args, **match.kwargs)
        except MultiPartParserError:
            error = {"error": "bad_request", "message": RejectNulMiddleware.UNREADABLE_MULTIPART}
            return JsonResponse(error, status=400)
        except Http404:  # the HTML 404 page expects the member-facing middleware's attributes
            return JsonResponse({"error": "not_found", "message": "Not found."}, status=404)
        if response.get("X-Frame-Options") is None:
            response["X-Frame-Options"] = settings.X_FRAME_OPTIONS
        return response


class RejectNulMiddleware:
    """A query string, form body or JSON body carrying a NUL character (``%00``, ``\\u0000``) gets
    a 400 before any view runs.

    No text a person types holds NUL, and PostgreSQL cannot store or even compare it: a search box
    (``?q=``) or an API string with one answered 500 there while SQLite took it. Django forms
    refuse NUL themselves, but query parameters and API bodies reach the database without a form.
    In multipart bodies only the text fields are checked: uploaded files may be binary.

    A body is checked for ``\\u0000`` whatever its Content-Type: django-ninja reads every body as
    JSON, so a JSON body sent as ``application/x-www-form-urlencoded`` (curl's ``-d`` does that)
    reached the database with its NUL. ``%00`` means NUL only where Django decodes the body as a
    form; in JSON it is three characters of text. A browser's form cannot send ``\\u0000`` (it
    encodes the backslash as ``%5C``), so a form is refused only when it carries a NUL, as before.

    Reading the body is where Django refuses one above ``DATA_UPLOAD_MAX_MEMORY_SIZE``; under
    /api/ that is answered here as the API's own 413 (huntaze/api.py), not as the HTML 400 page
    the exception would otherwise become before django-ninja could answer it.
    """

    MESSAGE = "Text cannot contain NUL (0x00) characters."
    UNREADABLE_MULTIPART = "The multipart body could not be read: send it with a boundary in Content-Type."
    TOO_LARGE = "The request body is larger than this server accepts."

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            has_nul = self._has_nul(request)
        except MultiPartParserError:  # reading the fields failed: answered here, as the view cannot
            return self._bad_request(request, self.UNREADABLE_MULTIPART)
        except RequestDataTooBig:
            if request.path.startswith("/api/"):
                return self._api_error(413, "too_large", self.TOO_LARGE)
            raise  # pages: Django's 400, as a form read by the view would have raised it
        if has_nul:
            return self._bad_request(request, self.MESSAGE)
        return self.get_response(request)

    @classmethod
    def _bad_request(cls, request: HttpRequest, message: str) -> HttpResponseBase:
        if request.path.startswith("/api/"):
            return cls._api_error(400, "bad_request", message)
        return render(request, "400.html", {"exception": message}, status=400)

    @staticmethod
    def _api_error(status: int, code: str, message: str) -> JsonResponse:
        """The API's error shape (huntaze/api.py ``error_response``), for what is refused before it."""
        error = {"code": code, "message": message, "request_id": get_request_id()}
        return JsonResponse({"error": error}, status=status)

    @staticmethod
    def _has_nul(request: HttpRequest) -> bool:
        if "%00" in request.META.get("QUERY_STRING", ""):
            return True
        content_type = request.META.get("CONTENT_TYPE", "")
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return False
        if content_type.startswith("multipart/"):
            return any("\x00" in value for values in request.POST.lists() for value in values[1])
        body = request.body
        if b"\x00" in body or b"\\u0000" in body:  # django-ninja reads any body as JSON (see above)
            return True
        return content_type.startswith("application/x-www-form-urlencoded") and b"%00" in body


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
