"""API: the caller's notifications (``/notifications``) and marking one as read; the caller's
notification preferences (``/me/notification-preferences``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.pagination import paginate

from apps.accounts.api import api_membership, api_user
from apps.core.openapi import Id
from apps.notifications import preferences, selectors, services

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


# --- The caller's notification preferences (their own, across agencies) ------------------------

KindKey = Literal[tuple(kind.key for kind in preferences.KINDS)]  # type: ignore[valid-type]


class PreferenceOut(Schema):
    kind: str
    label: str
    in_app: bool
    email: bool


class PreferenceIn(Schema):
    kind: KindKey
    in_app: bool
    email: bool


class PreferencesPatch(Schema):
    preferences: list[PreferenceIn] = Field(max_length=len(preferences.KINDS) * 2)


def _preference_rows(user_id: int) -> list[dict]:
    return [
        {"kind": kind.key, "label": kind.label, "in_app": channels.in_app, "email": channels.email}
        for kind, channels in preferences.preferences_for_user(user_id=user_id)
    ]


@router.get("/me/notification-preferences", response=list[PreferenceOut], tags=["me"])
def preference_list(request: HttpRequest):
    return _preference_rows(api_user(request).pk)


@router.patch("/me/notification-preferences", response=list[PreferenceOut], tags=["me"])
def preference_update(request: HttpRequest, payload: PreferencesPatch):
    user = api_user(request)
    choices = {row.kind: preferences.Channels(in_app=row.in_app, email=row.email) for row in payload.preferences}
    preferences.preferences_set(user=user, choices=choices, ip_address=request.META.get("REMOTE_ADDR"))
    return _preference_rows(user.pk)
