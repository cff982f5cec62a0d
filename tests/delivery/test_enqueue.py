"""delivery_enqueue: validation, idempotency, dispatch on commit on the delivery's queue."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.core.errors import ApplicationError
from apps.delivery.connectors import PLATFORM_LIMITS, text_limit
from apps.delivery.models import Delivery
from tests.delivery.conftest import dispatched, enqueue


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"text": ""}, "text", "empty"),
        ({"text": "   \n "}, "text", "empty"),
        ({"text": "x" * 1001}, "text", "at most 1000"),
        ({"text": "hi\x00there"}, "text", "NUL"),
        ({"ppv_price": Decimal("0")}, "ppv_price", "more than zero"),
        ({"ppv_price": Decimal("-5")}, "ppv_price", "more than zero"),
        ({"ppv_price": "abc"}, "ppv_price", "not a price"),
        ({"ppv_price": Decimal("9.999")}, "ppv_price", "two decimal places"),
        ({"ppv_price": Decimal("NaN")}, "ppv_price", "more than zero"),
        ({"ppv_price": 9.99}, "ppv_price", "not a float"),
        ({"ppv_price": Decimal("1000000")}, "ppv_price", "at most"),
        ({"platform": "myspace"}, "platform", "myspace"),
        ({"queue": "urgent"}, "queue", "Unknown queue"),
        ({"recipient_id": ""}, "recipient_id", "platform id"),
        ({"media_count": -1}, "media_count", "media"),
        ({"idempotency_key": ""}, "idempotency_key", "idempotency key"),
        ({"idempotency_key": "k" * 65}, "idempotency_key", "idempotency key"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    world, django_capture_on_commit_callbacks, overrides, field, fragment
):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ApplicationError) as caught:
        enqueue(world, **overrides)
    assert caught.value.field == field
    assert fragment in caught.value.message
    assert not Delivery.objects.exists() and not callbacks


def test_the_limit_is_the_platforms(world):
    assert text_limit("onlyfans") == 1000 and text_limit("fansly") == 1500
    text = "x" * 1200  # too long for OnlyFans, fine for Fansly
    with pytest.raises(ApplicationError, match="onlyfans takes at most 1000"):
        enqueue(world, text=text)
    assert enqueue(world, platform="fansly", text=text).status == Delivery.Status.PENDING
    assert enqueue(world, text="x" * 1000).status == Delivery.Status.PENDING


def test_every_platform_has_a_limit():
    from apps.accounts.models import PLATFORMS

    assert set(PLATFORMS) <= set(PLATFORM_LIMITS)


def test_another_agencys_creator_is_refused(world, other_world):
    with pytest.raises(ApplicationError, match="No such creator"):
        enqueue(world, creator_id=other_world.creator.pk)
    assert not Delivery.objects.exists()


def test_a_delivery_is_stored_and_its_task_published_on_commit_on_its_queue(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        delivery = enqueue(
            world,
            ppv_price=Decimal("12.50"),
            media_count=2,
            queue="bulk",
            source="messaging.message",
            source_id=42,
        )
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 0 and delivery.max_attempts == 5
    assert delivery.ppv_price == Decimal("12.50") and delivery.currency == world.creator.currency
    assert (delivery.source, delivery.source_id, delivery.queue) == ("messaging.message", 42, "bulk")
    assert dispatched(callbacks) == [((delivery.pk,), {"queue": "bulk"})]


def test_the_same_key_twice_is_one_delivery_and_one_task(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        first = enqueue(world, idempotency_key="reply-1")
        second = enqueue(world, idempotency_key="reply-1", text="A different text")
    assert first.pk == second.pk and second.text == first.text
    assert Delivery.objects.count() == 1
    assert len(dispatched(callbacks)) == 1


def test_the_same_key_in_two_agencies_is_two_deliveries(world, other_world):
    mine = enqueue(world, idempotency_key="same")
    theirs = enqueue(other_world, idempotency_key="same")
    assert mine.pk != theirs.pk


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_insert_of_the_same_key_answers_the_winner(world):
    """Two transactions race past the "already there?" read: the loser's insert hits the unique
    constraint and answers the winner's row."""
    import threading

    from django.db import connection, transaction

    barrier = threading.Barrier(2, timeout=10)
    results, errors = [], []

    def racer(text):
        try:
            barrier.wait()
            with transaction.atomic():
                results.append(enqueue(world, idempotency_key="race", text=text).pk)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=racer, args=(f"text {n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1 and Delivery.objects.count() == 1
