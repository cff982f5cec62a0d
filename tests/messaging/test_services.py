"""Ingest and sending: what a fan does shows in the inbox; what a member sends is validated,
audited, sent once, and never twice when two members answer together."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.core.errors import ApplicationError, ConflictError
from apps.core.models import OutboxEvent
from apps.delivery.models import Delivery
from apps.messaging import selectors, services
from apps.messaging.models import Conversation, Draft, Fan, Message, Purchase
from tests.messaging.factories import ConversationFactory, FanFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def test_a_fan_message_makes_the_conversation_wait(world):
    fan = FanFactory(creator=world.creator, last_active_at=None)
    first = services.message_receive(fan=fan, text="hey you", platform_message_id="m1")
    services.message_receive(fan=fan, text="still there?", platform_message_id="m2")
    again = services.message_receive(fan=fan, text="hey you", platform_message_id="m1")  # redelivered
    conversation = Conversation.objects.get(fan=fan)
    assert again.pk == first.pk
    assert conversation.needs_reply and conversation.unread_count == 2 and conversation.message_count == 2
    assert conversation.waiting_since == first.created_at  # the wait started with the first message
    assert conversation.last_message_preview == "still there?"
    fan.refresh_from_db()
    assert fan.last_active_at is not None


def test_purchases_add_to_the_right_bucket_once(world):
    fan = FanFactory(creator=world.creator)
    services.purchase_record(fan=fan, kind="tip", amount=Decimal("20"), platform_purchase_id="p1")
    services.purchase_record(fan=fan, kind="tip", amount=Decimal("20"), platform_purchase_id="p1")
    services.purchase_record(fan=fan, kind="subscription", amount=Decimal("9.99"))
    fan.refresh_from_db()
    assert (fan.spent_tips, fan.spent_subscriptions, fan.total_spent) == (
        Decimal("20"),
        Decimal("9.99"),
        Decimal("29.99"),
    )
    assert Purchase.objects.filter(fan=fan).count() == 2
    with pytest.raises(ApplicationError):
        services.purchase_record(fan=fan, kind="tip", amount=Decimal("0"))
    with pytest.raises(ApplicationError):
        services.purchase_record(fan=fan, kind="refund", amount=Decimal("5"))


def _waiting(world, creator=None):
    fan = FanFactory(creator=creator or world.creator)
    services.message_receive(fan=fan, text="are you online?")
    return Conversation.objects.select_related("fan", "creator").get(fan=fan)


def test_send_queues_one_delivery_and_answers_the_fan(world, django_capture_on_commit_callbacks):
    conversation = _waiting(world)
    with django_capture_on_commit_callbacks(execute=True):
        message = services.message_send(
            membership=world.chatter, conversation=conversation, text="I'm here babe", seen_message_count=1
        )
    delivery = Delivery.objects.get(idempotency_key=message.idempotency_key)
    assert (delivery.text, delivery.recipient_id, delivery.queue) == (
        "I'm here babe",
        conversation.fan.platform_fan_id,
        "interactive",
    )
    conversation.refresh_from_db()
    assert not conversation.needs_reply and conversation.waiting_since is None
    assert message.sent_by == world.chatter.user and message.source == "human" and message.edit_ratio is None


def test_two_members_answering_at_once_one_wins(world):
    conversation = _waiting(world)
    services.message_send(membership=world.chatter, conversation=conversation, text="first!", seen_message_count=1)
    with pytest.raises(ConflictError, match=world.chatter.user.email):
        services.message_send(membership=world.manager, conversation=conversation, text="second", seen_message_count=1)
    assert list(Message.objects.filter(direction="out").values_list("text", flat=True)) == ["first!"]
    assert Delivery.objects.count() == 1


def test_a_fan_writing_again_while_typing_is_a_conflict(world):
    conversation = _waiting(world)
    services.message_receive(fan=conversation.fan, text="hello??")
    with pytest.raises(ConflictError, match="wrote again"):
        services.message_send(membership=world.chatter, conversation=conversation, text="hi", seen_message_count=1)


def _campaign_message(conversation, *, key: str, sent_at, text: str = "New set tonight!"):
    services.messages_record_sent(
        agency_id=conversation.agency_id,
        creator_id=conversation.creator_id,
        campaign_id=None,
        sent=[
            services.SentElsewhere(
                platform=conversation.fan.platform, recipient_id=conversation.fan.platform_fan_id, text=text,
                ppv_price=None, media_count=0, idempotency_key=key, platform_message_id=f"p-{key}", sent_at=sent_at,
            )
        ],
    )  # fmt: skip


def test_a_campaign_message_recorded_late_leaves_a_newer_message_last(world):
    conversation = _waiting(world)
    _campaign_message(conversation, key="c1", sent_at=timezone.now() - timedelta(hours=1))
    conversation.refresh_from_db()
    assert conversation.message_count == 2 and conversation.needs_reply
    assert (conversation.last_message_direction, conversation.last_message_preview) == ("in", "are you online?")
    _campaign_message(conversation, key="c2", sent_at=timezone.now(), text="Last call!")
    conversation.refresh_from_db()
    assert (conversation.last_message_direction, conversation.last_message_preview) == ("out", "Last call!")


def test_a_campaign_message_while_typing_is_no_conflict(world):
    conversation = _waiting(world)
    _campaign_message(conversation, key="c1", sent_at=timezone.now())
    message = services.message_send(
        membership=world.chatter, conversation=conversation, text="hi", seen_message_count=1
    )
    assert message.status == "queued"
    conversation.refresh_from_db()
    assert conversation.message_count == 3 and not conversation.needs_reply


def test_a_fan_writing_again_with_a_campaign_message_is_still_a_conflict(world):
    conversation = _waiting(world)
    services.message_receive(fan=conversation.fan, text="hello??")
    _campaign_message(conversation, key="c1", sent_at=timezone.now())
    with pytest.raises(ConflictError):
        services.message_send(membership=world.chatter, conversation=conversation, text="hi", seen_message_count=1)
    assert not Message.objects.filter(text="hi").exists()


def test_a_fan_message_arriving_late_stays_before_the_reply_that_answered_it(world):
    """A sync catching up (or a webhook delivered late) brings a message the fan wrote before the
    chatter's reply: the history shows it at its time, and the thread still ends with the reply,
    answered, with nothing unread."""
    conversation = _waiting(world)
    asked = Message.objects.get(conversation=conversation)
    reply = services.message_send(
        membership=world.chatter, conversation=conversation, text="I'm here babe", seen_message_count=1
    )
    services.message_receive(
        fan=conversation.fan, text="hello??", platform_message_id="late-1", at=asked.created_at - timedelta(minutes=5)
    )
    conversation.refresh_from_db()
    assert (conversation.last_message_direction, conversation.last_message_preview) == ("out", "I'm here babe")
    assert conversation.last_message_at == reply.created_at
    assert not conversation.needs_reply and conversation.waiting_since is None and conversation.unread_count == 0
    assert conversation.message_count == 3
    history = selectors.message_page(conversation=conversation)
    assert [m.text for m in history] == ["hello??", "are you online?", "I'm here babe"]
    assert Fan.objects.get(pk=conversation.fan_id).last_active_at == asked.created_at  # not taken back


def test_a_late_fan_message_no_reply_came_after_makes_the_fan_wait_since_then(world):
    """Late, but unanswered: a campaign's message answers no one, so the fan has been waiting
    since the late message; the newer campaign message stays the thread's last."""
    now = timezone.now()
    fan = FanFactory(creator=world.creator)
    services.message_receive(fan=fan, text="are you online?", at=now - timedelta(minutes=10))
    conversation = Conversation.objects.select_related("fan").get(fan=fan)
    _campaign_message(conversation, key="c1", sent_at=now - timedelta(minutes=5))
    services.message_receive(fan=fan, text="hi there", platform_message_id="late-1", at=now - timedelta(hours=1))
    conversation.refresh_from_db()
    assert (conversation.last_message_direction, conversation.last_message_preview) == ("out", "New set tonight!")
    assert conversation.needs_reply and conversation.waiting_since == now - timedelta(hours=1)
    assert conversation.unread_count == 2 and conversation.message_count == 3


def test_fan_messages_at_the_same_time_end_with_the_one_stored_last(world):
    at = timezone.now().replace(microsecond=0)  # platforms often report whole seconds
    fan = FanFactory(creator=world.creator)
    for n, text in enumerate(["one", "two", "three"]):
        services.message_receive(fan=fan, text=text, platform_message_id=f"m{n}", at=at)
    services.message_receive(fan=fan, text="earlier", platform_message_id="m9", at=at - timedelta(seconds=1))
    conversation = Conversation.objects.get(fan=fan)
    assert (conversation.last_message_preview, conversation.waiting_since) == ("three", at - timedelta(seconds=1))
    assert [m.text for m in selectors.message_page(conversation=conversation)][-1] == "three"


def test_the_same_submission_twice_sends_once(world):
    conversation = _waiting(world)
    first = services.message_send(
        membership=world.chatter, conversation=conversation, text="hi", idempotency_key="k" * 32
    )
    again = services.message_send(
        membership=world.chatter, conversation=conversation, text="hi", idempotency_key="k" * 32
    )
    assert first.pk == again.pk
    assert Message.objects.filter(direction="out").count() == 1 and Delivery.objects.count() == 1


@pytest.mark.parametrize(
    ("text", "price", "media", "field", "message"),
    [
        ("   ", None, 0, "text", "Write a message"),
        ("x" * 5000, None, 0, "text", "allows"),
        ("my pics", Decimal("500"), 1, "ppv_price", "PPV prices go from"),
        ("unlock me", Decimal("10"), 0, "ppv_price", "needs media"),
        ("send it to my cashapp, I'm 16 btw 😈", None, 0, "text", "Not sent"),
        # A member types it, not the AI: a direct message's conduct rules still apply.
        ("add me on telegram babe, it's cheaper there", None, 0, "text", "Not sent"),
        ("let's meet up at my hotel tonight, room 12", None, 0, "text", "Not sent"),
    ],
)
def test_bad_messages_are_refused_with_the_field_and_nothing_is_stored(world, text, price, media, field, message):
    conversation = _waiting(world)
    with pytest.raises(ApplicationError, match=message) as error:
        services.message_send(
            membership=world.chatter, conversation=conversation, text=text, ppv_price=price, media_count=media
        )
    assert error.value.field == field
    assert not Message.objects.filter(direction="out").exists() and not Delivery.objects.exists()
    conversation.refresh_from_db()
    assert conversation.needs_reply  # still waiting for a real answer


def test_who_may_send(world):
    conversation = _waiting(world, creator=world.other_creator)  # not assigned to the chatter
    with pytest.raises(PermissionDenied):
        services.message_send(membership=world.chatter, conversation=conversation, text="hi")
    with pytest.raises(PermissionDenied):
        services.message_send(membership=world.viewer, conversation=conversation, text="hi")
    assert services.message_send(membership=world.manager, conversation=conversation, text="hi").pk


def test_a_sent_draft_is_audited_with_its_edit_ratio(world):
    conversation = _waiting(world)
    draft = Draft.objects.create(
        agency=world.agency, creator=world.creator, conversation=conversation, text="Hey Jake, miss you!", score=80
    )
    other = Draft.objects.create(
        agency=world.agency, creator=world.creator, conversation=conversation, text="b", score=1
    )
    message = services.message_send(
        membership=world.chatter, conversation=conversation, text="Hey Jake, missed you so much!", draft=draft
    )
    assert message.source == "ai_draft" and message.suggested_text == "Hey Jake, miss you!"
    assert Decimal("0") < message.edit_ratio < Decimal("0.5")
    assert Draft.objects.get(pk=draft.pk).status == "sent" and Draft.objects.get(pk=other.pk).status == "discarded"
    fan = FanFactory(creator=world.creator, display_name="Lena")
    services.message_receive(fan=fan, text="hi")
    template = TemplateFactory(agency=world.agency, text="Hi {fan.first_name|babe}")
    conversation = Conversation.objects.select_related("fan", "creator").get(fan=fan)
    as_rendered = services.message_send(
        membership=world.chatter, conversation=conversation, text="Hi Lena", template=template
    )
    assert (as_rendered.source, as_rendered.suggested_text, as_rendered.edit_ratio) == (
        "template",
        "Hi Lena",
        Decimal("0"),
    )


def test_ppv_unlock_counts_toward_the_buy_rate(world):
    conversation = _waiting(world)
    offer = services.message_send(
        membership=world.chatter, conversation=conversation, text="new set 🔥", ppv_price=Decimal("15"), media_count=3
    )
    fan = Fan.objects.get(pk=conversation.fan_id)
    services.purchase_record(fan=fan, kind="ppv", amount=Decimal("15"), message=offer)
    fan.refresh_from_db()
    offer.refresh_from_db()
    assert (fan.ppv_offered, fan.ppv_bought, fan.ppv_buy_rate) == (1, 1, 1.0)
    assert offer.unlocked_at is not None and fan.spent_ppv == Decimal("15")
    assert Conversation.objects.get(pk=conversation.pk).fan_value == Decimal("15")


def test_soft_lock_shows_who_is_answering(world):
    conversation = ConversationFactory(fan=FanFactory(creator=world.creator))
    assert services.conversation_lock(membership=world.chatter, conversation=conversation) == (
        True,
        world.chatter.user_id,
    )
    assert services.conversation_lock(membership=world.manager, conversation=conversation) == (
        False,
        world.chatter.user_id,
    )
    Conversation.objects.filter(pk=conversation.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert services.conversation_lock(membership=world.manager, conversation=conversation)[0]  # expired lock is free
    services.conversation_unlock(membership=world.chatter, conversation=conversation)  # not theirs: no effect
    assert Conversation.objects.get(pk=conversation.pk).locked_by_id == world.manager.user_id


def test_refreshing_ones_own_lock_extends_it_without_telling_every_open_inbox(world):
    conversation = ConversationFactory(fan=FanFactory(creator=world.creator))
    services.conversation_lock(membership=world.chatter, conversation=conversation)
    first_until = Conversation.objects.get(pk=conversation.pk).locked_until
    published = OutboxEvent.objects.filter(kind="inbox.changed").count()

    assert services.conversation_lock(membership=world.chatter, conversation=conversation) == (
        True,
        world.chatter.user_id,
    )

    assert Conversation.objects.get(pk=conversation.pk).locked_until >= first_until
    assert OutboxEvent.objects.filter(kind="inbox.changed").count() == published
    services.conversation_unlock(membership=world.chatter, conversation=conversation)
    assert OutboxEvent.objects.filter(kind="inbox.changed").count() == published + 1  # others see it freed


@pytest.mark.django_db(transaction=True)
def test_the_same_tags_saved_twice_at_once_are_kept_once(world):
    """The second save reads the tags before the first commits, then inserts the same tag. Only
    PostgreSQL lets both transactions run at once (SQLite serialises them at the first write)."""
    import threading
    import time

    from django.db import connection, transaction

    from apps.messaging.models import FanTag

    fan = FanFactory(creator=world.creator)
    inserted, errors = threading.Event(), []

    def first_save():
        try:
            with transaction.atomic():
                FanTag.objects.create(agency_id=fan.agency_id, creator_id=fan.creator_id, fan=fan, name="vip")
                inserted.set()
                time.sleep(0.5)  # the second save reads the tags and waits on this row meanwhile
        finally:
            connection.close()

    def second_save():
        try:
            inserted.wait(10)
            assert services.fan_tags_set(membership=world.chatter, fan=fan, tags=["VIP"]) == ["vip"]
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=first_save), threading.Thread(target=second_save)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert list(FanTag.objects.filter(fan=fan).values_list("name", flat=True)) == ["vip"]
