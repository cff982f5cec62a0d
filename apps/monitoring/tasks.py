"""Monitoring's scheduled work (CELERY_BEAT_SCHEDULE in settings)."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError


@shared_task(queue="bulk")
def rollup_metrics() -> dict[str, int]:
    """Sum closed hours' and days' metric rows and apply retention (apps/monitoring/rollups.py)."""
    from apps.monitoring.rollups import rollup

    return rollup()


@shared_task(queue="default", ignore_result=True)
def evaluate_slos() -> dict[str, int]:
    """Every 30 s: every enabled SLO's burn-rate rules evaluated, firing and resolving their alerts
    (apps/monitoring/slo.py). Metrics arrive from every process within METRICS_FLUSH_SECONDS; no
    flush here, where a slow sink would hold the evaluation up."""
    from apps.monitoring.slo import evaluate

    statuses = evaluate()
    return {"evaluated": len(statuses), "holding": sum(len(status.holding) for status in statuses)}


@shared_task(
    queue="default", ignore_result=True, autoretry_for=(DatabaseError, OSError), retry_backoff=True,
    retry_jitter=True, max_retries=5,
)  # fmt: skip
def dispatch_alert(alert_id: int, event: str) -> None:
    """Tell people about one fired or resolved alert (apps/monitoring/alerts.py ``dispatch``),
    queued when the alert's transaction commits so its caller never waits for the channels. A
    database or network error (the mail server down) is retried with backoff, telling only those
    not told yet; a firing or resolution still untold is queued again by ``redispatch_alerts``."""
    from apps.monitoring.alerts import dispatch
    from apps.monitoring.models import Alert

    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is not None:
        dispatch(alert, event)


@shared_task(queue="default", ignore_result=True)
def redispatch_alerts() -> int:
    """Every minute: firings and resolutions not yet told to everyone are queued again
    (apps/monitoring/alerts.py ``redispatch``)."""
    from apps.monitoring.alerts import redispatch

    return redispatch()


@shared_task(queue="default", ignore_result=True)
def deliver_alert_webhook(webhook_id: int, alert_id: int, event: str, attempt: int = 1) -> None:
    """One signed POST of an alert event to one webhook, logged; a retryable failure queues the
    next attempt after exponential backoff with jitter (apps/monitoring/webhooks.py)."""
    from apps.monitoring.webhooks import deliver

    outcome = deliver(webhook_id=webhook_id, alert_id=alert_id, event=event, attempt=attempt)
    if outcome.retry_in is not None:
        deliver_alert_webhook.apply_async((webhook_id, alert_id, event, attempt + 1), countdown=outcome.retry_in)


# Tasks kept in their slices' modules, registered under this module's name (Celery autodiscovers
# tasks.py only).
from apps.monitoring.budget_tasks import check_budgets  # noqa: E402,F401
from apps.monitoring.task_metrics import sample_queue_depth  # noqa: E402,F401
