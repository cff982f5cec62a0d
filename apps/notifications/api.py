"""API: the caller's notifications (``/notifications``) and marking one as read."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.pagination import paginate

from apps.accounts.api import api_membership
from apps.core.openapi import Id
from apps.notifications import selectors, services

router = Router()


class NotificationOut(Schema):
    id: int
    level: str
    title: str
    body: str
    url: str
    created_at: datetime
    read_at: datetime | None


@router.get("/notifications", response=list[NotificationOut], tags=["notifications"])
@paginate(page_size=25)
def notification_list(request: HttpRequest):
    return selectors.notification_list(membership=api_membership(request))


@router.post("/notifications/{notification_id}/read", response=NotificationOut, tags=["notifications"])
def notification_read(request: HttpRequest, notification_id: Id):
    membership = api_membership(request)
    notification = selectors.notification_get(membership=membership, notification_id=notification_id)
    services.notifications_mark_read(membership=membership, notification_id=notification.pk)
    notification.refresh_from_db()
    return notification
