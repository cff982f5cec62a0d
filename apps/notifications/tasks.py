"""Housekeeping for notifications, scheduled by beat (CELERY_BEAT_SCHEDULE in settings)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

READ_NOTIFICATION_RETENTION = timedelta(days=90)


@shared_task(queue="bulk")
def purge_read_notifications() -> int:
    """Delete notifications read more than 90 days ago; unread ones are kept whatever their age."""
    from apps.notifications.models import Notification

    cutoff = timezone.now() - READ_NOTIFICATION_RETENTION
    deleted, _ = Notification.objects.filter(read_at__lt=cutoff).delete()
    return deleted
