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


@shared_task(queue="interactive", ignore_result=True)
def dispatch_events() -> int:
    """Dispatch every claimable outbox event (apps/core/outbox.py): kicked on commit in the
    ``worker`` mode, and beat's sweep in every mode. Safe to run any number of times at once."""
    from apps.core.outbox import dispatch_pending

    return dispatch_pending().dispatched


@shared_task(queue="bulk")
def purge_dispatched_events() -> int:
    """Delete dispatched events older than EVENTS_RETENTION_DAYS."""
    from apps.core.outbox import purge_dispatched

    return purge_dispatched()
