"""EVENTS_DISPATCH_ON_COMMIT=worker: the commit enqueues ``dispatch_events`` and a real Celery
worker process (on the test run's broker and database) dispatches the events."""

from __future__ import annotations

import time

import pytest

from apps.core import events
from apps.core.models import OutboxEvent
from tests.processes import celery_worker_args, running


@pytest.mark.worker
def test_a_real_worker_dispatches_what_a_commit_enqueued(transactional_db, settings):
    settings.EVENTS_DISPATCH_ON_COMMIT = "worker"
    ids = [events.publish("test.worker", agency_id=1, payload={"n": n}, groups=["test.worker"]).pk for n in range(5)]
    assert OutboxEvent.objects.filter(pk__in=ids, dispatched_at__isnull=True).count() == 5  # nothing inline
    with running(celery_worker_args()):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and OutboxEvent.objects.filter(dispatched_at__isnull=True).exists():
            time.sleep(0.2)
    dispatched = OutboxEvent.objects.filter(pk__in=ids, dispatched_at__isnull=False)
    assert dispatched.count() == 5, "the worker did not dispatch the events"
    assert set(dispatched.values_list("attempts", flat=True)) == {1}  # five kicks, each event sent once
