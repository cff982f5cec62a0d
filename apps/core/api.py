"""API: health, the caller's identity, notifications."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.pagination import PageNumberPagination, paginate

from apps.accounts.api import api_membership
from apps.accounts.models import ApiToken
from apps.accounts.permissions import Perm, has_perm
from apps.core import selectors, services
from apps.core.health import run_checks

router = Router()


class CheckOut(Schema):
    ok: bool
    latency_ms: float
    backend: str
    required: bool
    error: str | None = None


class HealthOut(Schema):
    status: str
    checks: dict[str, CheckOut]


@router.get("/health", auth=None, response={200: HealthOut, 503: HealthOut}, tags=["health"])
def health(request: HttpRequest):
    """Database, cache, channel layer and broker, each with its round-trip latency."""
    results = run_checks()
    healthy = all(r.ok for r in results if r.required)
    body = {
        "status": "ok" if healthy else "down",
        "checks": {
            r.name: {
                "ok": r.ok,
                "latency_ms": r.latency_ms,
                "backend": r.backend,
                "required": r.required,
                "error": r.error,
            }
            for r in results
        },
    }
    return Status(200 if healthy else 503, body)


class MeOut(Schema):
    email: str
    full_name: str
    agency_id: int
    agency_name: str
    role: str
    permissions: list[str]
    via_token: bool


@router.get("/me", response=MeOut, tags=["me"])
def me(request: HttpRequest):
    membership = api_membership(request)
    return {
        "email": membership.user.email,
        "full_name": membership.user.full_name,
        "agency_id": membership.agency_id,
        "agency_name": membership.agency.name,
        "role": membership.role,
        "permissions": [perm.value for perm in Perm if has_perm(membership, perm)],
        "via_token": isinstance(request.auth, ApiToken),
    }


class NotificationOut(Schema):
    id: int
    level: str
    title: str
    body: str
    url: str
    created_at: datetime
    read_at: datetime | None


@router.get("/notifications", response=list[NotificationOut], tags=["notifications"])
@paginate(PageNumberPagination, page_size=25)
def notification_list(request: HttpRequest):
    return selectors.notification_list(membership=api_membership(request))


@router.post("/notifications/{notification_id}/read", response=NotificationOut, tags=["notifications"])
def notification_read(request: HttpRequest, notification_id: int):
    membership = api_membership(request)
    notification = selectors.notification_get(membership=membership, notification_id=notification_id)
    services.notifications_mark_read(membership=membership, notification_id=notification.pk)
    notification.refresh_from_db()
    return notification
