"""Reads of a member's own notifications, scoped to the membership's agency and user."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import Membership
from apps.notifications.models import Notification


def notification_list(*, membership: Membership) -> QuerySet[Notification]:
    return Notification.objects.for_agency(membership.agency_id).filter(user_id=membership.user_id)


def notification_unread_count(*, membership: Membership) -> int:
    return notification_list(membership=membership).filter(read_at__isnull=True).count()


def notification_get(*, membership: Membership, notification_id: int) -> Notification:
    notification = notification_list(membership=membership).filter(pk=notification_id).first()
    if notification is None:
        raise Http404("No such notification.")
    return notification


def notification_recipient_is_member(*, user_id: int, agency_id: int) -> bool:
    """Whether an active user is still a member of the agency, so may receive its notifications."""
    return Membership.objects.filter(user_id=user_id, agency_id=agency_id, user__is_active=True).exists()
