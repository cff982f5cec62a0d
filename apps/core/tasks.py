"""Housekeeping for core, scheduled by beat (CELERY_BEAT_SCHEDULE in settings)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


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
