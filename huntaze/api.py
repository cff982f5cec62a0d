"""The REST API root at /api/v1/ (django-ninja), with one JSON error shape for every error:

    {"error": {"code": "...", "message": "...", "fields": {"name": ["..."]}, "request_id": "..."}}

Authentication: a per-agency API token (``Authorization: Bearer hz_…``) or the browser session
(with CSRF on unsafe methods). Routers live in each app's api.py.
"""

from __future__ import annotations

import logging

from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from apps.accounts.api import ApiTokenAuth, MemberSessionAuth
from apps.accounts.api import router as accounts_router
from apps.accounts.events_api import router as events_router
from apps.billing.api import router as billing_router
from apps.campaigns.api import router as campaigns_router
from apps.campaigns.automation_api import router as automations_router
from apps.core.api import router as core_router
from apps.core.errors import ApplicationError
from apps.core.logging import get_request_id
from apps.core.middleware import RejectNulMiddleware
from apps.core.openapi import Producer, declare_errors, declare_links
from apps.integrations.api import router as integrations_router
from apps.messaging.api import router as messaging_router
from apps.monitoring.api import router as monitoring_router
from apps.notifications.api import router as notifications_router
from apps.optimization.api import router as optimization_router
from apps.studio.api import router as studio_router
from apps.workflows.api import router as workflows_router

logger = logging.getLogger(__name__)

# The operations that answer ids of each kind, keyed by the parameter name other operations take
# them as; apps.core.openapi links them to every such operation (schemathesis's stateful phase
# follows these links, so objects it creates are read, changed and deleted again).
ID_PRODUCERS = {
    "creator_id": [Producer("POST", "/creators", 201, "/id"), Producer("GET", "/creators", 200, "/items/0/id")],
    # The first member listed is the agency's first owner, often the caller; the second is someone
    # the caller can change or remove.
    "membership_id": [Producer("GET", "/members", 200, "/items/0/id"), Producer("GET", "/members", 200, "/items/1/id")],
    "invitation_id": [
        Producer("POST", "/invitations", 201, "/id"),
        Producer("GET", "/invitations", 200, "/items/0/id"),
    ],
    "token_id": [Producer("GET", "/api-tokens", 200, "/items/0/id")],
    "notification_id": [Producer("GET", "/notifications", 200, "/items/0/id")],
    "generation_id": [
        Producer("POST", "/studio/generations", 201, "/id"),
        Producer("GET", "/studio/generations", 200, "/items/0/id"),
    ],
    "idea_id": [Producer("GET", "/studio/ideas", 200, "/items/0/id")],
    "draft_id": [Producer("POST", "/conversations/{conversation_id}/drafts", 201, "/drafts/0/id")],
    "fan_id": [Producer("GET", "/fans", 200, "/items/0/id")],
    "conversation_id": [Producer("GET", "/conversations", 200, "/items/0/id")],
    "segment_id": [Producer("POST", "/segments", 201, "/id"), Producer("GET", "/segments", 200, "/items/0/id")],
    "template_id": [Producer("POST", "/templates", 201, "/id"), Producer("GET", "/templates", 200, "/items/0/id")],
    # The first three campaigns listed (with the status filter: one each action accepts), and the
    # campaign an edit or an action answers, so its next step follows (edit → schedule → approve,
    # pause → resume).
    "budget_id": [Producer("POST", "/ai-budgets", 201, "/id"), Producer("GET", "/ai-budgets", 200, "/items/0/id")],
    "recommendation_id": [
        Producer("GET", "/optimization/recommendations", 200, f"/items/{index}/id") for index in range(2)
    ],
    "anomaly_id": [Producer("GET", "/optimization/anomalies", 200, "/items/0/id")],
    "run_id": [Producer("POST", "/workflows/runs", 201, "/id"), Producer("GET", "/workflows/runs", 200, "/items/0/id")],
    "scheduled_post_id": [
        Producer("POST", "/integrations/posts", 201, "/id"),
        Producer("GET", "/integrations/posts", 200, "/items/0/id"),
    ],
    "crm_id": [
        Producer("POST", "/integrations/crm", 201, "/id"),
        Producer("GET", "/integrations/crm", 200, "/items/0/id"),
    ],
    "crm_delivery_id": [Producer("GET", "/integrations/crm/{crm_id}/deliveries", 200, "/items/0/id")],
    "step_run_id": [Producer("GET", "/workflows/runs/{run_id}/steps", 200, "/0/id")],
    "campaign_id": [
        Producer("POST", "/campaigns", 201, "/id"),
        *(Producer("GET", "/campaigns", 200, f"/items/{index}/id") for index in range(3)),
        Producer("PATCH", "/campaigns/{campaign_id}", 200, "/id"),
        *(
            Producer("POST", f"/campaigns/{{campaign_id}}/{action}", 200, "/id")
            for action in ("schedule", "approve", "pause", "resume")
        ),
    ],
}


class HuntazeAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict | None = None):
        """ninja's document, plus every operation's error answers and the links between operations."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        root = self.get_root_path(path_params or {}) if path_prefix is None else path_prefix
        declare_errors(schema)
        return declare_links(schema, ID_PRODUCERS, prefix=root.rstrip("/"))


api = HuntazeAPI(
    title="Huntaze API",
    version="1",
    description="Creators, members and agency data for integrators. Authenticate with an API token "
    "(Settings → API tokens) sent as `Authorization: Bearer <token>`.",
    auth=[ApiTokenAuth(), MemberSessionAuth()],
    docs_url="/docs",
    urls_namespace="api",
)


def error_response(
    request: HttpRequest, status: int, code: str, message: str, fields: dict | None = None, upgrade_url: str = ""
) -> HttpResponse:
    body: dict = {"code": code, "message": message, "request_id": get_request_id()}
    if fields:
        body["fields"] = fields
    if upgrade_url:
        body["upgrade_url"] = upgrade_url
    return api.create_response(request, {"error": body}, status=status)


def _field_name(loc: tuple | list) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "payload", "form")]
    return ".".join(parts) or "__all__"


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    fields: dict[str, list[str]] = {}
    for error in exc.errors:
        fields.setdefault(_field_name(error.get("loc", ())), []).append(error.get("msg", "Invalid value."))
    return error_response(request, 422, "validation_error", "Some fields are not valid.", fields)


@api.exception_handler(AuthenticationError)
def _authentication_error(request, exc):
    return error_response(request, 401, "not_authenticated", "Log in or send a valid API token.")


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return error_response(request, exc.status_code, "error", str(exc))


@api.exception_handler(Http404)
def _not_found(request, exc):
    return error_response(request, 404, "not_found", str(exc) or "Not found.")


@api.exception_handler(PermissionDenied)
def _permission_denied(request, exc):
    return error_response(request, 403, "permission_denied", str(exc) or "You are not allowed to do this.")


@api.exception_handler(ApplicationError)
def _application_error(request, exc: ApplicationError):
    fields = {exc.field: [exc.message]} if exc.field else None
    return error_response(
        request, exc.status_code, exc.code, exc.message, fields, upgrade_url=exc.extra.get("upgrade_url", "")
    )


@api.exception_handler(MultiPartParserError)
def _unreadable_multipart(request, exc):
    # Raised while ninja reads request.FILES, e.g. multipart/form-data without a boundary.
    return error_response(
        request, 400, "bad_request", "The multipart body could not be read: send it with a boundary in Content-Type."
    )


@api.exception_handler(RequestDataTooBig)
def _body_too_big(request, exc):
    return error_response(request, 413, "too_large", RejectNulMiddleware.TOO_LARGE)  # as the middleware answers


@api.exception_handler(BadRequest)
@api.exception_handler(SuspiciousOperation)
def _bad_request(request, exc):
    return error_response(request, 400, "bad_request", "The request could not be read.")


@api.exception_handler(Exception)
def _server_error(request, exc):
    logger.exception("Unhandled API error")
    return error_response(request, 500, "server_error", "Something went wrong on our side. It has been logged.")


api.add_router("/", core_router)
api.add_router("/", accounts_router)
api.add_router("/", events_router)
api.add_router("/", notifications_router)
api.add_router("/studio", studio_router)
api.add_router("/", messaging_router)
api.add_router("/", campaigns_router)
api.add_router("/", automations_router)
api.add_router("/", monitoring_router)
api.add_router("/", optimization_router)
api.add_router("/", billing_router)
api.add_router("/", workflows_router)
api.add_router("/integrations", integrations_router)
