from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import Membership
from apps.core.models import Notification


def notification_list(*, membership: Membership) -> QuerySet[Notification]:
    return Notification.objects.for_agency(membership.agency_id).filter(user_id=membership.user_id)


def notification_unread_count(*, membership: Membership) -> int:
    return notification_list(membership=membership).filter(read_at__isnull=True).count()


def notification_get(*, membership: Membership, notification_id: int) -> Notification:
    notification = notification_list(membership=membership).filter(pk=notification_id).first()
    if notification is None:
        raise Http404("No such notification.")
    return notification
