"""Monitoring's scheduled work (CELERY_BEAT_SCHEDULE in settings)."""

from __future__ import annotations

from celery import shared_task


@shared_task(queue="bulk")
def rollup_metrics() -> dict[str, int]:
    """Sum closed hours' and days' metric rows and apply retention (apps/monitoring/rollups.py)."""
    from apps.monitoring.rollups import rollup

    return rollup()
