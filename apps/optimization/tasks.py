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


@shared_task(queue="bulk", ignore_result=True, acks_late=True)
def hourly_anomalies(agency_id: int | None = None) -> dict[str, float | int]:
    """Every hour at :05: creators' hourly anomalies (messages sent, fan replies; nightly.py
    ``run_hourly``) and, on the full run, service-metric anomalies (service_anomalies.py), stored
    and alerted. Idempotent: each point is stored once, each alert fires once per key."""
    from apps.optimization.service_anomalies import run_service_anomalies
    from apps.optimization.services import run_hourly

    report = run_hourly(agency_id=agency_id)
    service = run_service_anomalies() if agency_id is None else None  # platform-wide: the full run only
    return {
        "agencies": report.agencies,
        "anomalies_stored": report.anomalies_stored,
        "service_anomalies_stored": service.anomalies_stored if service else 0,
        "seconds": round(report.seconds, 3),
    }
