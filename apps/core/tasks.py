"""Housekeeping for core, scheduled by beat (CELERY_BEAT_SCHEDULE in settings)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

READ_NOTIFICATION_RETENTION = timedelta(days=90)


@shared_task(queue="bulk")
def purge_read_notifications() -> int:
    """Delete notifications read more than 90 days ago; unread ones are kept whatever their age."""
    from apps.core.models import Notification

    cutoff = timezone.now() - READ_NOTIFICATION_RETENTION
    deleted, _ = Notification.objects.filter(read_at__lt=cutoff).delete()
    return deleted


@shared_task(queue="bulk")
def purge_expired_shared_keys() -> int:
    """Delete expired rate-limit windows and records of the shared state kept without Redis."""
    from apps.core.models import SharedKey
    from apps.core.shared import LocalSharedState, shared_state

    deleted, _ = SharedKey.objects.filter(expires_at__lt=timezone.now()).delete()
    state = shared_state()
    if isinstance(state, LocalSharedState):
        deleted += state.purge_expired()
    return deleted
