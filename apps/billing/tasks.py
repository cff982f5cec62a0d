"""Billing's scheduled work (CELERY_BEAT_SCHEDULE in settings: ``billing-report-usage``,
``billing-dunning``). Thin: the work is in apps/billing/stripe_sync.py."""

from __future__ import annotations

from celery import shared_task


@shared_task(queue="bulk", ignore_result=True, acks_late=True)
def report_usage() -> dict[str, int]:
    """Hourly: AI credits used since the last report sent to Stripe's meter. Idempotent: each
    report has its identifier before it is sent, so a redelivered run counts nothing twice."""
    from apps.billing.stripe_sync import usage_report_all

    return usage_report_all()


@shared_task(queue="bulk", ignore_result=True, acks_late=True)
def dunning_tick() -> dict[str, int]:
    """Every 15 minutes: agencies that became read-only (trial over, grace period over, canceled)
    pause their sending campaigns. Idempotent: a paused campaign is not sending any more."""
    from apps.billing.stripe_sync import dunning_tick as run

    return run()


@shared_task(queue="bulk", ignore_result=True, acks_late=True)
def readonly_campaigns_pause(agency_id: int) -> int:
    from apps.billing.stripe_sync import readonly_campaigns_pause as run

    return run(agency_id=agency_id)
