"""Mass deliveries: one platform-side mass message carrying many fans, written by
``delivery_enqueue_mass`` and sent through the same pump, limits, breaker, retries, dead letters
and idempotency key as any delivery, with one connector call (``send_mass``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.delivery.connectors import Connector, MassSendResult, MassUnsupportedError, SendResult, mass_supported
from apps.delivery.models import (
    Delivery,
    MassRecipient,
    SimulatedMassMessage,
    SimulatedOutboundMessage,
    mass_message_key,
)
from apps.delivery.selectors import (
    delivery_recipient_counts_by_source,
    mass_recipients_sent,
    mass_recipients_sent_since,
)
from apps.delivery.services import (
    delivery_cancel,
    delivery_claim,
    delivery_enqueue_mass,
    delivery_hold,
    delivery_pump,
    delivery_release,
    delivery_requeue,
    delivery_send,
    delivery_sweep,
)
from apps.delivery.simulated import SimulatedConnector
from apps.delivery.tasks import deliver
from tests.delivery.test_pump import PLATFORM_LIKE, enqueue_many, outbound

pytestmark = pytest.mark.django_db

SOURCE = "tests.mass"


def enqueue_mass(world, recipients, **overrides) -> Delivery:
    arguments = {
        "agency_id": world.agency.pk,
        "creator_id": world.creator.pk,
        "platform": "onlyfans",
        "recipient_ids": recipients,
        "text": "New set tonight, only for my fans 🔥",
        "idempotency_key": "mass-1",
        "source": SOURCE,
        "source_id": 7,
    }
    return delivery_enqueue_mass(**(arguments | overrides))


def fans(count: int, prefix: str = "fan") -> list[str]:
    return [f"{prefix}-{index}" for index in range(count)]


class NoMassConnector(Connector):
    """A platform's connector with direct messages only (``supports_mass`` stays False)."""

    def send(self, delivery: Delivery) -> SendResult:
        return SendResult(platform_message_id=f"direct-{delivery.pk}", sent_at=timezone.now())


class AcceptedListConnector(Connector):
    """A platform that answers the fans it accepted rather than those it refused."""

    supports_mass = True

    def send(self, delivery: Delivery) -> SendResult:
        raise AssertionError("a mass delivery never goes through send()")

    def send_mass(self, delivery: Delivery, recipient_ids) -> MassSendResult:
        return MassSendResult(
            platform_message_id=f"listed-{delivery.pk}",
            sent_at=timezone.now(),
            accepted=tuple(recipient for recipient in recipient_ids if not recipient.endswith("-0")),
        )


# --- One call for N fans, exactly once -----------------------------------------------------------


def test_the_platform_receives_one_mass_message_for_all_the_fans(world, after_commit):
    with after_commit() as published:
        delivery = enqueue_mass(world, fans(250), ppv_price="12.00", media_count=2)
    [(args, options)] = published  # the account's pump, as for any bulk delivery
    assert args == (world.creator.pk, "onlyfans") and options["queue"] == "bulk"
    assert (delivery.kind, delivery.queue, delivery.recipient_id, delivery.recipient_count) == ("mass", "bulk", "", 250)
    assert list(MassRecipient.objects.filter(delivery=delivery).values_list("recipient_id", flat=True)) == fans(250)

    assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5) == {"sent": 1}
    received = SimulatedMassMessage.objects.get()
    assert received.idempotency_key == "mass-1" and received.recipient_ids == fans(250)
    assert (str(received.ppv_price), received.media_count, received.text) == ("12.00", 2, delivery.text)
    assert not SimulatedOutboundMessage.objects.exists()  # no direct message to anyone
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.rejected_count) == ("sent", 1, 0)
    assert delivery.platform_message_id == received.platform_message_id and delivery.sent_at is not None


def test_a_mass_message_is_one_send_against_the_accounts_rate_limit(world, settings):
    """Account: one send per 3 s, no burst. The mass message to 100 fans takes that one slot, and
    the direct messages behind it wait for the next ones."""
    settings.DELIVERY_RATE_LIMITS = PLATFORM_LIKE
    enqueue_mass(world, fans(100))
    enqueue_many(world, outbound(3, prefix="direct"))
    assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5) == {"sent": 1}
    assert Delivery.objects.get(kind="mass").status == "sent"
    assert set(Delivery.objects.filter(kind="direct").values_list("status", flat=True)) == {"pending"}


def test_a_retry_after_a_retryable_error_is_not_a_second_mass_message(world, settings, after_commit):
    """The platform took the mass message but its answer was lost (a timeout): the delivery is
    retried with the same key, and the platform answers the first message instead of a second."""
    settings.DELIVERY_RETRY_BASE_SECONDS = settings.DELIVERY_RETRY_MAX_SECONDS = 0
    delivery = enqueue_mass(world, [*fans(20), "lost-answer-1-fan"])
    with after_commit() as published:
        assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5) == {"failed": 1}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1) and "answer was lost" in delivery.last_error
    [options] = [options for args, options in published if args == (delivery.pk,)]  # its own retry task
    assert options["queue"] == "bulk"
    first = SimulatedMassMessage.objects.get(idempotency_key="mass-1")

    assert deliver(delivery.pk) == "sent"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.platform_message_id) == ("sent", 2, first.platform_message_id)
    assert SimulatedMassMessage.objects.filter(agency=world.agency, idempotency_key="mass-1").count() == 1
    assert deliver(delivery.pk) == "skipped"  # a duplicate task sends nothing


def test_a_platform_down_stores_nothing_and_the_retry_sends_it_once(world, settings):
    settings.DELIVERY_RETRY_BASE_SECONDS = settings.DELIVERY_RETRY_MAX_SECONDS = 0
    delivery = enqueue_mass(world, [*fans(5), "fail-retry-2-fan"])
    assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5) == {"failed": 1}
    assert not SimulatedMassMessage.objects.exists()
    assert deliver(delivery.pk) == "failed"
    assert deliver(delivery.pk) == "sent"
    assert SimulatedMassMessage.objects.count() == 1


def test_a_mass_message_that_keeps_failing_is_a_dead_letter_and_can_be_requeued(world, settings):
    settings.DELIVERY_RETRY_BASE_SECONDS = settings.DELIVERY_RETRY_MAX_SECONDS = 0
    settings.DELIVERY_MAX_ATTEMPTS = 2
    delivery = enqueue_mass(world, [*fans(3), "fail-retry-fan"])
    delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    assert deliver(delivery.pk) == "dead"
    delivery.refresh_from_db()
    assert "unavailable" in delivery.last_error
    requeued = delivery_requeue(membership=world.owner, delivery_id=delivery.pk)
    assert (requeued.status, requeued.max_attempts) == ("pending", 4)


def test_fans_the_platform_rejects_are_marked_and_counted(world):
    delivery = enqueue_mass(world, [*fans(4), "fail-permanent-blocked"])
    assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5) == {"sent": 1}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.rejected_count) == ("sent", 1)
    assert list(MassRecipient.objects.filter(rejected=True).values_list("recipient_id", flat=True)) == [
        "fail-permanent-blocked"
    ]
    counts = delivery_recipient_counts_by_source(agency_id=world.agency.pk, source=SOURCE, source_ids=[7])
    assert (counts[7]["sent"], counts[7]["rejected"]) == (5, 1)
    reached = mass_recipients_sent(agency_id=world.agency.pk, source=SOURCE, source_id=7)
    assert [row.recipient_id for row in reached] == fans(4)


def test_a_platform_that_lists_the_accepted_fans_has_the_others_rejected(world, settings):
    settings.DELIVERY_CONNECTORS = {"onlyfans": f"{__name__}.AcceptedListConnector"}
    delivery = enqueue_mass(world, fans(3))
    assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5) == {"sent": 1}
    delivery.refresh_from_db()
    assert (delivery.platform_message_id, delivery.rejected_count) == (f"listed-{delivery.pk}", 1)
    assert MassRecipient.objects.get(rejected=True).recipient_id == "fan-0"


# --- Each fan's own key, and per-fan look-ups --------------------------------------------------------


def test_each_fan_reached_has_a_key_derived_from_the_mass_key(world):
    enqueue_mass(world, fans(3))
    delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    rows = list(mass_recipients_sent(agency_id=world.agency.pk, source=SOURCE, source_id=7))
    assert [row.idempotency_key for row in rows] == [mass_message_key("mass-1", row.pk) for row in rows]
    assert all(len(row.idempotency_key) <= 64 and row.platform == "onlyfans" for row in rows)
    assert {row.platform_message_id for row in rows} == {SimulatedMassMessage.objects.get().platform_message_id}


def test_fans_reached_lately_are_found_per_fan_through_an_index(world):
    from django.db import connection

    enqueue_mass(world, fans(3))
    delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    lately = mass_recipients_sent_since(
        agency_id=world.agency.pk, creator_id=world.creator.pk, since=timezone.now() - timedelta(hours=1)
    )
    assert sorted(lately.values_list("recipient_id", flat=True)) == fans(3)
    assert not lately.filter(recipient_id="fan-3").exists()
    if connection.vendor == "sqlite":
        sql, params = lately.filter(recipient_id="fan-1").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
        assert "mass_recipient_fan_idx" in plan, plan


# --- Hold, cancel, sweep: as any delivery -----------------------------------------------------------


def test_held_or_cancelled_before_the_call_nothing_reaches_the_platform(world, django_capture_on_commit_callbacks):
    enqueue_mass(world, fans(10))
    assert delivery_hold(agency_id=world.agency.pk, source=SOURCE, source_id=7) == 1
    assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=2) == {}
    assert not SimulatedMassMessage.objects.exists()
    with django_capture_on_commit_callbacks() as callbacks:
        assert delivery_release(agency_id=world.agency.pk, source=SOURCE, source_id=7) == 1
    assert callbacks, "release wakes the account's pump"
    assert delivery_cancel(agency_id=world.agency.pk, source=SOURCE, source_id=7, reason="Cancelled by a test.") == 1
    assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=2) == {}
    assert not SimulatedMassMessage.objects.exists()
    assert Delivery.objects.get().status == "cancelled"


def test_a_worker_lost_mid_send_is_swept_and_the_retry_is_still_one_mass_message(world, settings):
    """The platform stored the mass message, then the worker died before recording it: the lease
    expires, the sweeper makes it failed, and the retry answers the stored message."""
    settings.DELIVERY_RETRY_BASE_SECONDS = settings.DELIVERY_RETRY_MAX_SECONDS = 0
    delivery = enqueue_mass(world, fans(4))
    claimed = delivery_claim(delivery_id=delivery.pk)
    SimulatedConnector(platform="onlyfans").send_mass(claimed, fans(4))  # then the worker is killed
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert delivery_sweep()["lease_expired"] == 1
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    assert SimulatedMassMessage.objects.count() == 1


# --- Refused at validation, nothing written --------------------------------------------------------


def test_a_platform_without_mass_messages_is_refused_with_a_clear_message(world, settings):
    settings.DELIVERY_CONNECTORS = {"onlyfans": f"{__name__}.NoMassConnector"}
    assert not mass_supported("onlyfans") and mass_supported("fansly")
    with pytest.raises(MassUnsupportedError) as caught:
        enqueue_mass(world, fans(3))
    assert caught.value.field == "platform"
    assert "OnlyFans takes no platform-side mass message" in caught.value.message
    assert not Delivery.objects.exists() and not MassRecipient.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"recipient_ids": []}, "recipient_ids", "at least one fan"),
        ({"recipient_ids": ["fan-1", ""]}, "recipient_ids", "Fan 2"),
        ({"recipient_ids": ["x" * 129]}, "recipient_ids", "too long"),
        ({"idempotency_key": "k" * 41}, "idempotency_key", "at most 40"),
        ({"text": "x" * 1001}, "text", "1000"),
        ({"ppv_price": "0"}, "ppv_price", "more than zero"),
        ({"platform": "myspace"}, "platform", "myspace"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(world, overrides, field, words):
    with pytest.raises(ApplicationError) as caught:
        enqueue_mass(world, fans(3), **overrides)
    assert caught.value.field == field and words in caught.value.message
    assert not Delivery.objects.exists() and not MassRecipient.objects.exists()


def test_another_agencys_creator_is_refused(world, other_world):
    with pytest.raises(ApplicationError, match="No such creator"):
        enqueue_mass(world, fans(2), creator_id=other_world.creator.pk)
    assert not Delivery.objects.exists()


def test_the_same_key_again_is_the_same_delivery_and_a_fan_twice_is_one_fan(world):
    first = enqueue_mass(world, ["fan-1", "fan-2", "fan-1"])
    second = enqueue_mass(world, fans(50))
    assert first.pk == second.pk and first.recipient_count == 2
    assert Delivery.objects.count() == 1 and MassRecipient.objects.count() == 2
