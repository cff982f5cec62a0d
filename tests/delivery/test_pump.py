"""Bulk deliveries: written in batches by ``delivery_enqueue_many`` and sent by their platform
account's pump at the pace the send rate limits allow, each fan once."""

from __future__ import annotations

import pytest

from apps.core.errors import ApplicationError
from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.delivery.services import Outbound, delivery_enqueue_many, delivery_pump

PLATFORM_LIKE = {
    "account": {"limit": 1, "seconds": 3, "burst": 1},
    "creator": {"limit": 100, "seconds": 1},
    "agency": {"limit": 100, "seconds": 1},
    "global": {"limit": 1000, "seconds": 1},
}


def outbound(count: int, prefix: str = "fan", **overrides) -> list[Outbound]:
    return [
        Outbound(
            **{"recipient_id": f"{prefix}-{i}", "text": f"Hi {i}!", "idempotency_key": f"{prefix}-k{i}", **overrides}
        )
        for i in range(count)
    ]


def enqueue_many(world, messages, **overrides):
    return delivery_enqueue_many(
        **{"agency_id": world.agency.pk, "creator_id": world.creator.pk, "platform": "onlyfans", "messages": messages}
        | overrides
    )


def test_a_batch_is_written_at_once_and_one_pump_is_published(world, after_commit):
    with after_commit() as published:
        assert enqueue_many(world, outbound(120), source="campaigns.campaign") == 120
    rows = Delivery.objects.filter(agency=world.agency)
    assert rows.count() == 120 and set(rows.values_list("status", "queue", "source")) == {
        ("pending", "bulk", "campaigns.campaign")
    }
    [(args, options)] = published
    assert args == (world.creator.pk, "onlyfans") and options["queue"] == "bulk"


def test_a_bad_message_names_its_place_and_nothing_is_written(world):
    messages = outbound(5)
    messages[3] = Outbound(recipient_id="fan-3", text="x" * 1001, idempotency_key="k3")
    with pytest.raises(ApplicationError) as caught:
        enqueue_many(world, messages)
    assert "Message 4:" in caught.value.message and "1000" in caught.value.message
    assert caught.value.extra["index"] == 3
    assert not Delivery.objects.exists()


def test_another_agencys_creator_is_refused(world, other_world):
    with pytest.raises(ApplicationError):
        enqueue_many(world, outbound(2), creator_id=other_world.creator.pk)
    assert not Delivery.objects.exists()


def test_a_key_already_used_is_not_a_second_delivery(world):
    enqueue_many(world, outbound(3))
    enqueue_many(world, outbound(5))
    assert Delivery.objects.count() == 5


def test_one_key_twice_in_a_batch_is_one_delivery_the_first(world):
    """On PostgreSQL the straight COPY fails on the repeated key and the batch is written again
    through the ON CONFLICT path, inside the caller's transaction (nothing else is lost)."""
    messages = outbound(4)
    messages.append(Outbound(recipient_id="fan-again", text="Second copy", idempotency_key="fan-k1"))
    assert enqueue_many(world, messages) == 5
    rows = Delivery.objects.order_by("id")
    assert rows.count() == 4
    assert rows.get(idempotency_key="fan-k1").text == "Hi 1!"


def test_the_pump_sends_every_due_delivery_of_its_account_once(world):
    enqueue_many(world, outbound(120))
    enqueue_many(world, outbound(3, prefix="other"), creator_id=world.other_creator.pk)
    outcomes = delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=30)
    assert outcomes == {"sent": 120}
    received = sorted(SimulatedOutboundMessage.objects.values_list("recipient_id", flat=True))
    assert received == sorted(f"fan-{i}" for i in range(120))  # the other account's are not its job
    assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans") == {}  # nothing left


def test_the_pump_keeps_the_accounts_pace_and_comes_back_when_it_may(world, settings, after_commit):
    settings.DELIVERY_RATE_LIMITS = PLATFORM_LIKE
    enqueue_many(world, outbound(10))
    with after_commit() as published:
        assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=30) == {"sent": 1}
    [(args, options)] = published
    assert args == (world.creator.pk, "onlyfans") and 2.0 < options["countdown"] <= 3.0
    waiting = Delivery.objects.exclude(status="sent")
    assert waiting.count() == 9 and set(waiting.values_list("status", "attempts")) == {("pending", 0)}


def test_failures_in_a_batch_are_each_handled_as_in_a_single_send(world, settings):
    settings.DELIVERY_RETRY_BASE_SECONDS = settings.DELIVERY_RETRY_MAX_SECONDS = 0
    messages = [
        *outbound(3),
        Outbound(recipient_id="fail-permanent-fan", text="Hi", idempotency_key="perm"),
        Outbound(recipient_id="fail-retry-1-fan", text="Hi", idempotency_key="flaky"),
    ]
    enqueue_many(world, messages)
    outcomes = delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=30)
    assert outcomes == {"sent": 3, "dead": 1, "failed": 1}
    assert Delivery.objects.get(idempotency_key="perm").status == "dead"
    flaky = Delivery.objects.get(idempotency_key="flaky")
    assert flaky.status == "failed" and flaky.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_two_pumps_of_one_account_at_once_send_each_message_once():
    """Two threads (two database connections) pump the same account: on PostgreSQL the second
    skips the rows the first has locked; on SQLite the conditional claim decides."""
    import threading

    from django.db import connection

    from tests.conftest import build_world

    world = build_world("Racing pumps")
    enqueue_many(world, outbound(200))
    results = []

    def pump() -> None:
        try:
            results.append(delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=60))
        finally:
            connection.close()

    threads = [threading.Thread(target=pump) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result.get("sent", 0) for result in results) == 200
    received = list(SimulatedOutboundMessage.objects.values_list("recipient_id", flat=True))
    assert len(received) == 200 and len(set(received)) == 200
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


def test_the_sweeper_leaves_a_slow_accounts_overdue_deliveries_to_its_running_pump(world, settings, after_commit):
    """A campaign on a slow account keeps most of its deliveries pending longer than the grace
    period while its pump chain works through them: a sweep then publishes no second pump (one a
    minute would pile up chains that each re-publish themselves until the campaign is over)."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.delivery.services import delivery_sweep

    settings.DELIVERY_RATE_LIMITS = PLATFORM_LIKE
    enqueue_many(world, outbound(10))
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=10))  # queued long ago
    with after_commit() as published:
        assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=30) == {"sent": 1}
        assert delivery_sweep() == {"lease_expired": 0, "dead": 0, "redispatched": 0}
    [(args, options)] = published  # only the pump's own hand-over, for the account's next slot
    assert args == (world.creator.pk, "onlyfans") and 2.0 < options["countdown"] <= 3.0
    assert Delivery.objects.filter(status="pending").count() == 9


def test_the_sweeper_publishes_the_pump_of_an_account_whose_pump_was_lost(world, settings, after_commit):
    """The pump published with the campaign never ran (its message was lost with the broker):
    once its heartbeat is older than the grace period, the sweeper publishes a new one."""
    import time
    from datetime import timedelta

    from django.utils import timezone

    from apps.delivery.services import delivery_sweep

    settings.DELIVERY_SWEEP_GRACE_SECONDS = 1
    with after_commit() as published:
        enqueue_many(world, outbound(3))
    assert len(published) == 1  # the campaign's pump, lost from here on
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=10))
    with after_commit() as published:
        assert delivery_sweep()["redispatched"] == 0  # published a moment ago: on its way
    assert published == []
    time.sleep(1.1)
    with after_commit() as published:
        assert delivery_sweep()["redispatched"] == 3
    assert published == [((world.creator.pk, "onlyfans"), {"queue": "bulk"})]
    assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans") == {"sent": 3}
