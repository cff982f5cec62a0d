"""The deliver task: claim, connector, sent / failed (retry) / dead, notifications, re-queue,
the sweeper, and sending once however often the task runs."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

from apps.core.errors import ConflictError
from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.delivery.services import delivery_claim, delivery_pump, delivery_requeue, delivery_sweep, retry_delay
from apps.delivery.tasks import deliver, sweep_deliveries
from apps.notifications.models import Notification
from tests.delivery.conftest import dispatched, enqueue
from tests.delivery.factories import DeliveryFactory, SimulatedOutboundMessageFactory


@pytest.fixture
def no_backoff(settings):
    """Retries due at once, so a test can run the next attempt without waiting."""
    settings.DELIVERY_RETRY_BASE_SECONDS = 0
    settings.DELIVERY_RETRY_MAX_SECONDS = 0


def test_a_delivery_is_sent_through_the_simulated_platform(world, status_events, after_commit):
    delivery = enqueue(world, source="messaging.message", source_id=7)
    with after_commit():
        assert deliver(delivery.pk) == "sent"
    delivery.refresh_from_db()
    message = SimulatedOutboundMessage.objects.get()
    assert delivery.status == "sent" and delivery.attempts == 1 and delivery.lease_until is None
    assert delivery.platform_message_id == message.platform_message_id and message.platform_message_id.startswith(
        "sim_"
    )
    assert delivery.sent_at == message.received_at
    assert (message.recipient_id, message.text, message.idempotency_key) == (
        "fan-1",
        delivery.text,
        delivery.idempotency_key,
    )
    assert status_events == [
        (delivery.pk, "sending", "messaging.message", 7),
        (delivery.pk, "sent", "messaging.message", 7),
    ]


def test_running_the_task_again_sends_nothing_more(world):
    delivery = enqueue(world)
    assert deliver(delivery.pk) == "sent"
    assert deliver(delivery.pk) == "skipped"
    assert deliver(delivery.pk) == "skipped"
    assert SimulatedOutboundMessage.objects.count() == 1
    assert Delivery.objects.get(pk=delivery.pk).attempts == 1


def test_an_unknown_id_is_skipped(db):
    assert deliver(999_999) == "skipped"


def test_the_simulated_platform_answers_a_resend_of_the_same_key_with_the_same_message(world):
    """A worker killed after the platform accepted the message sends it again: still one message."""
    from apps.delivery.connectors import connector_for

    delivery = enqueue(world)
    first = connector_for("onlyfans").send(delivery)
    second = connector_for("onlyfans").send(delivery)
    assert first == second and SimulatedOutboundMessage.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_task_at_once_send_once(world):
    """The claim is a conditional UPDATE: while one worker holds the lease (the platform is slow),
    the other's claim changes nothing and it returns."""
    delivery = enqueue(world, recipient_id="slow-1-fan")
    results = {}

    def worker(name):
        try:
            results[name] = deliver(delivery.pk)
        finally:
            connection.close()

    first = threading.Thread(target=worker, args=("first",))
    first.start()
    deadline = timezone.now() + timedelta(seconds=10)
    while not SimulatedOutboundMessage.objects.exists() and timezone.now() < deadline:
        pass  # the first worker holds the claim and the platform has the message
    second = threading.Thread(target=worker, args=("second",))
    second.start()
    first.join()
    second.join()
    assert results == {"first": "sent", "second": "skipped"}
    assert SimulatedOutboundMessage.objects.count() == 1
    assert Delivery.objects.get(pk=delivery.pk).status == "sent"


def test_a_retryable_error_schedules_a_retry_then_the_retry_sends(
    world, no_backoff, django_capture_on_commit_callbacks
):
    delivery = enqueue(world, recipient_id="fail-retry-1-fan", queue="bulk")
    with django_capture_on_commit_callbacks() as callbacks:
        assert deliver(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 1
    assert "unavailable" in delivery.last_error and delivery.next_attempt_at is not None
    assert dispatched(callbacks) == [((delivery.pk,), {"queue": "bulk"})]  # no backoff: no countdown
    assert not SimulatedOutboundMessage.objects.exists()

    assert deliver(delivery.pk) == "sent"
    delivery.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 2
    assert SimulatedOutboundMessage.objects.count() == 1


def test_a_retry_is_not_sent_before_it_is_due(world, settings, django_capture_on_commit_callbacks):
    settings.DELIVERY_RETRY_BASE_SECONDS = 60
    delivery = enqueue(world, recipient_id="fail-ratelimit-30-fan")
    with django_capture_on_commit_callbacks() as callbacks:
        assert deliver(delivery.pk) == "failed"
    delivery.refresh_from_db()
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 28 <= wait <= 60  # the platform's Retry-After (30 s) at least, the backoff's cap at most
    [(_, options)] = dispatched(callbacks)
    assert 30 <= options["countdown"] <= 60 and options["queue"] == "interactive"
    assert deliver(delivery.pk) == "skipped"  # an early task changes nothing
    assert Delivery.objects.get(pk=delivery.pk).attempts == 1


def test_backoff_grows_with_full_jitter_and_honours_retry_after(settings):
    settings.DELIVERY_RETRY_BASE_SECONDS = 10
    settings.DELIVERY_RETRY_MAX_SECONDS = 900
    for attempt, ceiling in [(1, 10), (2, 20), (3, 40), (7, 640), (8, 900), (30, 900)]:
        delays = [retry_delay(attempt=attempt) for _ in range(200)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the whole range
    assert retry_delay(attempt=1, retry_after=120) >= 120
    assert retry_delay(attempt=1, retry_after=10**9) == 6 * 3600


def test_attempts_used_up_is_dead_with_its_last_error_and_owners_and_managers_are_told_once(
    world, no_backoff, settings, status_events, after_commit
):
    settings.DELIVERY_MAX_ATTEMPTS = 3
    delivery = enqueue(world, recipient_id="fail-retry-fan")
    with after_commit() as published:
        assert [deliver(delivery.pk) for _ in range(3)] == ["failed", "failed", "dead"]
        assert deliver(delivery.pk) == "skipped"
    assert len(published) == 2  # a retry after each of the first two failures, none after dead
    delivery.refresh_from_db()
    assert delivery.status == "dead" and delivery.attempts == 3
    assert delivery.last_error == "The simulated platform is unavailable (attempt 3)."
    notified = Notification.objects.filter(agency=world.agency)
    assert sorted(n.user_id for n in notified) == sorted([world.owner.user_id, world.manager.user_id])
    assert all(n.level == "error" and "Star" in n.title and "attempt 3" in n.body for n in notified)
    assert [status for _, status, _, _ in status_events].count("dead") == 1


def test_a_permanent_error_is_dead_at_once(world, django_capture_on_commit_callbacks):
    delivery = enqueue(world, recipient_id="fail-permanent-fan")
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(delivery.pk) == "dead"
    delivery.refresh_from_db()
    assert delivery.status == "dead" and delivery.attempts == 1 and "blocked" in delivery.last_error
    assert Notification.objects.filter(agency=world.agency).count() == 2
    assert not SimulatedOutboundMessage.objects.exists()


def test_automated_messages_dying_together_make_one_notice_and_email_per_member_per_account(
    world, mailoutbox, eager_celery, django_capture_on_commit_callbacks
):
    """An account that needs reconnecting kills every automated message of a tick: the owner and
    the manager hear about it once (in the app and by email), not once per message; another
    account's dead letter is news of its own."""
    dying = [enqueue(world, recipient_id="fail-permanent-fan", queue="default") for _ in range(5)]
    elsewhere = enqueue(world, creator_id=world.other_creator.pk, recipient_id="fail-permanent-fan", queue="default")
    with django_capture_on_commit_callbacks(execute=True):
        assert [deliver(delivery.pk) for delivery in dying] == ["dead"] * 5
        assert deliver(elsewhere.pk) == "dead"
    assert Delivery.objects.filter(status="dead").count() == 6  # every one is kept as a dead letter
    notified = Notification.objects.filter(agency=world.agency)
    assert sorted(notified.values_list("user_id", "title")) == sorted(
        (member.user_id, f"A message from {creator.display_name} could not be delivered")
        for member in (world.owner, world.manager)
        for creator in (world.creator, world.other_creator)
    )
    first = notified.filter(title__contains=world.creator.display_name).first()
    assert f"Delivery {dying[0].pk} " in first.body and "may have failed with it" in first.body
    assert "Deliveries, status Dead" in first.body
    assert sorted(message.to[0] for message in mailoutbox) == sorted(
        [world.owner.user.email, world.manager.user.email] * 2
    )


def test_a_dead_letter_rolled_back_with_its_transaction_leaves_the_accounts_notice_window_free(
    world, django_capture_on_commit_callbacks
):
    """A worker's transaction that made a delivery dead is rolled back (the worker was killed
    before its commit): nobody was told and the delivery is not dead, so the account's next dead
    letter must still be announced, not silenced for ten minutes by a window nobody used."""
    rolled_back = enqueue(world, recipient_id="fail-permanent-fan", queue="default")
    committed = enqueue(world, recipient_id="fail-permanent-fan", queue="default")
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            assert deliver(rolled_back.pk) == "dead"
            raise RuntimeError("the worker died before its COMMIT")
        assert Delivery.objects.get(pk=rolled_back.pk).status == "pending"  # nothing of that attempt is kept
        assert not Notification.objects.exists()
        assert deliver(committed.pk) == "dead"
    notified = Notification.objects.filter(agency=world.agency)
    assert sorted(notified.values_list("user_id", flat=True)) == sorted([world.owner.user_id, world.manager.user_id])
    assert all(f"Delivery {committed.pk} " in notice.body for notice in notified)


def test_a_message_over_the_platforms_limit_is_refused_by_the_platform_too(world):
    delivery = DeliveryFactory(creator=world.creator, text="x" * 1001)  # written around the service
    assert deliver(delivery.pk) == "dead"
    assert "1001-character" in Delivery.objects.get(pk=delivery.pk).last_error


# --- Re-queue --------------------------------------------------------------------------------


@pytest.fixture
def dead(world, settings, no_backoff):
    settings.DELIVERY_MAX_ATTEMPTS = 2
    delivery = enqueue(world, recipient_id="fail-retry-2-fan")  # fails twice, then the platform is back
    assert [deliver(delivery.pk) for _ in range(2)] == ["failed", "dead"]
    return delivery


def test_a_dead_delivery_requeued_is_sent(world, dead, status_events, after_commit):
    with after_commit() as published:
        requeued = delivery_requeue(membership=world.chatter, delivery_id=dead.pk)  # assigned to world.creator
        assert requeued.status == "pending" and requeued.max_attempts == 4
        assert deliver(dead.pk) == "sent"
    assert published == [((dead.pk,), {"queue": "interactive"})]
    assert Delivery.objects.get(pk=dead.pk).attempts == 3
    assert SimulatedOutboundMessage.objects.count() == 1
    assert [status for _, status, _, _ in status_events] == ["pending", "sending", "sent"]


def test_only_a_dead_delivery_can_be_requeued(world):
    delivery = enqueue(world)
    with pytest.raises(ConflictError, match="pending"):
        delivery_requeue(membership=world.owner, delivery_id=delivery.pk)


def test_requeue_of_another_agencys_delivery_is_404(world, other_world, dead):
    with pytest.raises(Http404):
        delivery_requeue(membership=other_world.owner, delivery_id=dead.pk)
    assert Delivery.objects.get(pk=dead.pk).status == "dead"


def test_a_viewer_cannot_requeue(world, dead):
    with pytest.raises(PermissionDenied):
        delivery_requeue(membership=world.viewer, delivery_id=dead.pk)
    assert Delivery.objects.get(pk=dead.pk).status == "dead"


def test_a_chatter_cannot_requeue_an_unassigned_creators_delivery(world, no_backoff):
    delivery = enqueue(world, creator_id=world.other_creator.pk, recipient_id="fail-permanent-fan")
    deliver(delivery.pk)
    with pytest.raises(Http404):
        delivery_requeue(membership=world.chatter, delivery_id=delivery.pk)


# --- Sweeper ---------------------------------------------------------------------------------


def test_the_sweeper_takes_back_an_expired_lease_and_the_resend_is_not_a_second_message(
    world, django_capture_on_commit_callbacks
):
    """A worker was killed after the platform accepted the message and before it recorded it."""
    delivery = enqueue(world, queue="bulk")
    claimed = delivery_claim(delivery_id=delivery.pk)
    SimulatedOutboundMessageFactory(
        creator=world.creator, idempotency_key=delivery.idempotency_key, platform_message_id="sim_accepted"
    )  # what the platform got before the kill
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert deliver(delivery.pk) == "sent"  # a redelivered task message may claim it itself
    assert Delivery.objects.get(pk=delivery.pk).platform_message_id == "sim_accepted"

    other = enqueue(world, queue="bulk")
    delivery_claim(delivery_id=other.pk)
    Delivery.objects.filter(pk=other.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        counts = delivery_sweep()
    assert counts == {"lease_expired": 1, "dead": 0, "redispatched": 0}
    other.refresh_from_db()
    assert other.status == "failed" and "lease expired" in other.last_error
    assert dispatched(callbacks) == [((other.pk,), {"queue": "bulk"})]
    assert deliver(other.pk) == "sent"
    assert SimulatedOutboundMessage.objects.count() == 2
    assert claimed.attempts == 1


def test_the_sweeper_declares_dead_a_delivery_that_lost_its_worker_on_every_attempt(
    world, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_MAX_ATTEMPTS = 1
    delivery = enqueue(world)
    delivery_claim(delivery_id=delivery.pk)
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_deliveries() == {"lease_expired": 0, "dead": 1, "redispatched": 0}
    assert Delivery.objects.get(pk=delivery.pk).status == "dead"
    assert Notification.objects.filter(agency=world.agency).count() == 2


def test_the_sweeper_republishes_a_lost_task_once_per_grace_period(world, django_capture_on_commit_callbacks):
    """An interactive delivery gets its own task again; bulk ones get their account's pump."""
    long_ago = timezone.now() - timedelta(minutes=10)
    lost = DeliveryFactory(creator=world.creator, next_attempt_at=long_ago)
    lost_bulk = [DeliveryFactory(creator=world.creator, next_attempt_at=long_ago, queue="bulk") for _ in range(2)]
    DeliveryFactory(creator=world.creator)  # due now, its task is on its way: left alone
    DeliveryFactory(creator=world.creator, status="sent", sent_at=long_ago, next_attempt_at=long_ago)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert delivery_sweep() == {"lease_expired": 0, "dead": 0, "redispatched": 3}
        assert delivery_sweep()["redispatched"] == 0
    assert dispatched(callbacks) == [
        ((lost.pk,), {"queue": "interactive"}),
        ((world.creator.pk, "onlyfans"), {"queue": "bulk"}),
    ]
    assert deliver(lost.pk) == "sent"
    assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans") == {"sent": 2}
    assert set(Delivery.objects.filter(pk__in=[d.pk for d in lost_bulk]).values_list("status", flat=True)) == {"sent"}


def test_the_sweeper_is_on_beats_schedule(settings):
    assert settings.CELERY_BEAT_SCHEDULE["sweep-deliveries"]["task"] == sweep_deliveries.name


def test_the_send_tasks_are_acknowledged_late_and_rejected_on_worker_loss():
    from apps.delivery.tasks import pump_deliveries

    for task in (deliver, pump_deliveries):
        assert task.acks_late and task.reject_on_worker_lost
        assert task.time_limit < 120  # below the default lease


# --- Smoke test through Celery (eager) ---------------------------------------------------------


def test_enqueue_in_a_transaction_sends_after_commit(world, eager_celery, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        delivery = enqueue(world)
        assert Delivery.objects.get(pk=delivery.pk).status == "pending"  # nothing before commit
    assert Delivery.objects.get(pk=delivery.pk).status == "sent"
    assert SimulatedOutboundMessage.objects.count() == 1
