"""Alerts: fire once per key, resolve, and tell people.

``fire()`` opens an alert unless one with the same key is already firing (deduplicated by the
``alert_one_firing_per_key`` constraint, so two processes evaluating at once open one);
``resolve()`` closes the firing alert of a key. Both answer the alert they changed, or None when
nothing changed, and hand the change to ``dispatch`` after the transaction commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.monitoring.models import Alert


def firing(key: str) -> Alert | None:
    return Alert.objects.filter(key=key, state=Alert.State.FIRING).first()


def fire(
    key: str,
    *,
    kind: str,
    severity: str,
    title: str,
    detail: str = "",
    agency_id: int | None = None,
    slo_id: int | None = None,
    budget_id: int | None = None,
    values: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Alert | None:
    """Open an alert for ``key`` unless one is firing; answers the new alert, or None."""
    now = now or timezone.now()
    current = firing(key)
    if current is not None:
        current.last_evaluated_at = now
        current.values = values or current.values
        current.save(update_fields=["last_evaluated_at", "values"])
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                key=key[:200], kind=kind, severity=severity, title=title[:200], detail=detail,
                agency_id=agency_id, slo_id=slo_id, budget_id=budget_id, values=values or {},
                fired_at=now, last_evaluated_at=now,
            )  # fmt: skip
    except IntegrityError:  # another process opened it a moment ago
        return None
    transaction.on_commit(lambda: dispatch(alert, "alert.fired"))
    return alert


def resolve(key: str, *, now: datetime | None = None, values: dict[str, Any] | None = None) -> Alert | None:
    """Close the firing alert of ``key``; answers it, or None when none was firing."""
    now = now or timezone.now()
    updated = Alert.objects.filter(key=key, state=Alert.State.FIRING).update(
        state=Alert.State.RESOLVED, resolved_at=now, last_evaluated_at=now
    )
    if not updated:
        return None
    alert = Alert.objects.filter(key=key, state=Alert.State.RESOLVED).order_by("-resolved_at", "-id").first()
    if alert is not None:
        if values:
            alert.values = values
            alert.save(update_fields=["values"])
        transaction.on_commit(lambda: dispatch(alert, "alert.resolved"))
    return alert


def dispatch(alert: Alert, event: str) -> None:
    """Tell people about a fired or resolved alert: in the app, by email, by signed webhook.

    (The channels are filled in by the SLO and alerting work; until then nothing is sent.)"""
