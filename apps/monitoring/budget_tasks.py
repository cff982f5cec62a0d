"""The budget task: every AI budget checked against its month's spend (CELERY_BEAT_SCHEDULE
"check-budgets"). Named under apps.monitoring.tasks so the schedule reads like the others';
apps/monitoring/tasks.py imports this module so workers register it."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="apps.monitoring.tasks.check_budgets", queue="default", ignore_result=True)
def check_budgets() -> dict[str, int]:
    """Fire each budget threshold reached this month (once per month), raise spend counters that
    fell behind the ledger, resolve last month's budget alerts (apps/monitoring/budgets.py)."""
    from apps.ai.ledger import ledger
    from apps.monitoring.budgets import budgets_evaluate

    ledger.flush()  # this process's own buffered rows count too
    fired = budgets_evaluate()
    return {"fired": len(fired)}
