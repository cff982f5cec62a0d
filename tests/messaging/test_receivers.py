"""The delivery → message receiver: a message sent from the inbox becomes sent (with the
platform's id), failed (with the last error) or stays queued while retried, end to end through
message_send, the on-commit publish and the delivery task (eager here; the delivery guarantees
themselves are tested with a real worker in tests/delivery/test_worker.py)."""

from __future__ import annotations

import pytest

from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.delivery.services import delivery_requeue
from apps.delivery.signals import delivery_status_changed
from apps.messaging import services
from apps.messaging.models import Conversation, Fan, Message
from tests.delivery.conftest import enqueue
from tests.messaging.api_helpers import waiting_conversation


def _send(world, django_capture_on_commit_callbacks, **fan_fields) -> Message:
    conversation = waiting_conversation(world.creator, **fan_fields)
    with django_capture_on_commit_callbacks(execute=True):
        message = services.message_send(membership=world.chatter, conversation=conversation, text="Hi babe")
    message.refresh_from_db()
    return message


def test_a_sent_delivery_marks_the_message_sent_with_the_platform_id(
    world, eager_celery, django_capture_on_commit_callbacks
):
    message = _send(world, django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get(source="messaging.message", source_id=message.pk)
    assert delivery.status == "sent"
    assert message.status == "sent" and message.platform_message_id == delivery.platform_message_id != ""
    assert message.sent_at == delivery.sent_at and message.error == ""
    assert SimulatedOutboundMessage.objects.filter(platform_message_id=message.platform_message_id).count() == 1


def test_a_dead_delivery_fails_the_message_with_the_last_error(world, eager_celery, django_capture_on_commit_callbacks):
    message = _send(world, django_capture_on_commit_callbacks, platform_fan_id="fail-permanent-1")
    assert message.status == "failed" and "blocked" in message.error
    assert message.platform_message_id == "" and message.sent_at is None


def test_a_retried_delivery_stays_queued_then_is_sent(
    world, eager_celery, django_capture_on_commit_callbacks, settings
):
    settings.DELIVERY_RETRY_BASE_SECONDS = 0.01  # the eager retry runs at once: keep it due
    settings.DELIVERY_RETRY_MAX_SECONDS = 0.01
    seen = []

    def watch(sender, *, status, source_id, **kwargs):
        seen.append((status, Message.objects.get(pk=source_id).status))

    delivery_status_changed.connect(watch, dispatch_uid="tests.messaging.watch")
    try:
        message = _send(world, django_capture_on_commit_callbacks, platform_fan_id="fail-retry-1-fan")
    finally:
        delivery_status_changed.disconnect(dispatch_uid="tests.messaging.watch")
    assert ("failed", "queued") in seen  # the message waits while the delivery is retried
    assert message.status == "sent" and message.error == "" and message.platform_message_id


def test_a_requeued_dead_letter_is_queued_again(world, eager_celery, django_capture_on_commit_callbacks):
    message = _send(world, django_capture_on_commit_callbacks, platform_fan_id="fail-permanent-2")
    delivery = Delivery.objects.get(source_id=message.pk, source="messaging.message")
    eager_celery.conf.task_always_eager = False  # keep the re-queued send from running
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        delivery_requeue(membership=world.owner, delivery_id=delivery.pk)
    for callback in callbacks:
        if getattr(getattr(callback, "func", None), "__name__", "") != "apply_async":
            callback()
    message.refresh_from_db()
    assert message.status == "queued"


def test_a_late_status_never_takes_a_sent_message_back(world, eager_celery, django_capture_on_commit_callbacks):
    message = _send(world, django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get(source_id=message.pk, source="messaging.message")
    for status in ("failed", "pending", "dead", "sending"):
        delivery_status_changed.send(
            sender=Delivery,
            delivery_id=delivery.pk,
            agency_id=world.agency.pk,
            status=status,
            source="messaging.message",
            source_id=message.pk,
        )
    message.refresh_from_db()
    assert message.status == "sent"


@pytest.mark.parametrize("source", ["campaigns.delivery", ""])
def test_other_sources_and_other_agencies_are_left_alone(
    world, other_world, django_capture_on_commit_callbacks, source
):
    conversation = waiting_conversation(world.creator)
    message = services.message_send(membership=world.chatter, conversation=conversation, text="Hi")
    foreign = enqueue(other_world, source="messaging.message", source_id=message.pk)
    unrelated = enqueue(world, source=source, source_id=message.pk)
    for delivery in (foreign, unrelated):
        delivery_status_changed.send(
            sender=Delivery,
            delivery_id=delivery.pk,
            agency_id=delivery.agency_id,
            status="dead",
            source=delivery.source,
            source_id=message.pk,
        )
    message.refresh_from_db()
    assert message.status == "queued" and message.error == ""


def _send_ppv(world, django_capture_on_commit_callbacks, platform_fan_id: str) -> Message:
    conversation = waiting_conversation(world.creator, text="show me more", platform_fan_id=platform_fan_id)
    with django_capture_on_commit_callbacks(execute=True):
        message = services.message_send(
            membership=world.chatter,
            conversation=conversation,
            text="Just for you",
            ppv_price=world.creator.ppv_price_min,
            media_count=1,
        )
    message.refresh_from_db()
    return message


def test_a_reply_that_failed_for_good_leaves_the_fan_waiting_and_offers_no_ppv(
    world, eager_celery, django_capture_on_commit_callbacks
):
    message = _send_ppv(world, django_capture_on_commit_callbacks, "fail-permanent-3")
    assert message.status == "failed"
    conversation = Conversation.objects.get(pk=message.conversation_id)
    asked = Message.objects.get(conversation=conversation, direction="in")
    assert conversation.needs_reply and conversation.waiting_since == asked.created_at
    assert conversation.last_message_direction == "in" and conversation.last_message_preview == "show me more"
    assert Fan.objects.get(pk=message.fan_id).ppv_offered == 0


def test_a_requeued_dead_reply_answers_the_fan_again(world, eager_celery, django_capture_on_commit_callbacks):
    message = _send_ppv(world, django_capture_on_commit_callbacks, "fail-permanent-4")
    delivery = Delivery.objects.get(source_id=message.pk, source="messaging.message")
    eager_celery.conf.task_always_eager = False  # keep the re-queued send from running
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        delivery_requeue(membership=world.owner, delivery_id=delivery.pk)
    for callback in callbacks:
        if getattr(getattr(callback, "func", None), "__name__", "") != "apply_async":
            callback()
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert not conversation.needs_reply and conversation.waiting_since is None
    assert conversation.last_message_direction == "out" and conversation.last_message_preview == "Just for you"
    assert Fan.objects.get(pk=message.fan_id).ppv_offered == 1
