"""The pipeline's numbers for monitoring: sends, failures and limiter waits over the last minute,
deliveries per status, and messages waiting per broker queue."""

from __future__ import annotations

import pytest
from celery import current_app

from apps.core import metrics as core_metrics
from apps.delivery import metrics
from apps.delivery.models import Delivery
from apps.delivery.services import Outbound, delivery_enqueue_many, delivery_pump
from apps.monitoring.models import MetricSample
from tests.delivery.conftest import enqueue

pytestmark = pytest.mark.django_db


def bulk(world, recipients: list[str]) -> None:
    delivery_enqueue_many(
        agency_id=world.agency.pk,
        creator_id=world.creator.pk,
        platform="onlyfans",
        messages=[Outbound(recipient_id=r, text="New set!", idempotency_key=f"m-{r}") for r in recipients],
    )


def test_sends_and_failed_attempts_are_counted_over_the_last_minute(world, django_capture_on_commit_callbacks):
    before = metrics.recent()
    with django_capture_on_commit_callbacks():
        bulk(world, ["fan-1", "fan-2", "fan-3", "fail-retry-x", "fail-permanent-y"])
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    after = metrics.recent()
    assert round(after.sent_per_s * after.window_s) - round(before.sent_per_s * before.window_s) == 3
    assert round(after.failed_per_s * after.window_s) - round(before.failed_per_s * before.window_s) == 2
    assert 60 <= after.window_s <= 120


def test_limiter_holds_are_counted_with_their_wait(world, settings, django_capture_on_commit_callbacks):
    generous = {"limit": 1000, "seconds": 1}
    settings.DELIVERY_RATE_LIMITS = {
        "account": {"limit": 1, "seconds": 60}, "creator": generous, "agency": generous, "global": generous,
    }  # fmt: skip
    with django_capture_on_commit_callbacks():
        bulk(world, ["fan-1", "fan-2"])
        outcome = delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=0.5)
    assert outcome.get("sent") == 1
    recent = metrics.recent()
    assert recent.deferred_per_s > 0
    assert 50 < recent.mean_limiter_wait_s <= 60  # the second send waits for the next minute's turn
    # ... and the monitoring sinks get the wait as ratelimit.wait (the Huntaze/RateLimiter namespace)
    core_metrics.flush()
    held = MetricSample.objects.get(name="ratelimit.wait")
    assert held.dimensions == {"scope": "delivery"} and 50_000 < held.max <= 60_000


def test_deliveries_by_status_and_dead_letters(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        bulk(world, ["fan-1", "fail-permanent-a"])
        enqueue(world)
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    counts = metrics.deliveries_by_status()
    assert counts == {"pending": 1, "sending": 0, "failed": 0, "held": 0, "dead": 1}
    assert metrics.dead_letters() == 1 == Delivery.objects.filter(status="dead").count()


def test_queue_depths_count_what_waits_in_the_broker():
    from apps.delivery.tasks import sweep_deliveries

    before = metrics.queue_depths()
    assert set(before) == {"interactive", "default", "bulk"}
    for _ in range(3):
        sweep_deliveries.apply_async(queue="bulk")  # nobody consumes them in this test
    after = metrics.queue_depths()
    assert after["bulk"] - before["bulk"] == 3
    assert after["interactive"] == before["interactive"]
    with current_app.connection_for_write() as connection:
        connection.default_channel.queue_purge("bulk")
