"""Optimization's scheduled work (CELERY_BEAT_SCHEDULE in settings: ``nightly-optimization``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(queue="bulk", ignore_result=True, acks_late=True)
def nightly_optimization(agency_id: int | None = None) -> dict[str, float | int]:
    """Every night at 03:30 UTC: recommendations, anomalies and outcomes for every creator
    (apps/optimization/services.py ``run_nightly``). Idempotent, so a redelivered run (acks_late)
    stores nothing twice: unchanged advice keeps its row and each anomaly point is stored once."""
    from apps.optimization.services import run_nightly

    report = run_nightly(agency_id=agency_id)
    return {
        "agencies": report.agencies,
        "creators": report.creators,
        "recommendations_created": report.recommendations_created,
        "anomalies_stored": report.anomalies_stored,
        "outcomes_measured": report.outcomes_measured,
        "seconds": round(report.seconds, 3),
    }
