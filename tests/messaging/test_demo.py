"""The messaging demo hook: repeatable, exact in its message count, and consistent with itself
(spend buckets are the sums of the purchases, conversation columns match their messages)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Q, Sum

from apps.accounts.demo import DEMO_DOMAIN, reset
from apps.accounts.models import Agency, CreatorAssignment, User
from apps.messaging.models import (
    Conversation,
    Direction,
    Fan,
    FanNote,
    FanRules,
    FanTag,
    Message,
    MessageTemplate,
    Purchase,
    PurchaseKind,
    Segment,
    Source,
)
from apps.messaging.simulation import allocate, split

SMALL = ["--creators", "2", "--fans", "80", "--messages", "900"]


def _summary() -> dict:
    fans = Fan.objects.aggregate(n=Count("id"), total=Sum("total_spent"), tips=Sum("spent_tips"))
    return {
        "fans": fans,
        "messages": Message.objects.count(),
        "outbound": Message.objects.filter(direction=Direction.OUTBOUND).count(),
        "purchases": Purchase.objects.aggregate(n=Count("id"), amount=Sum("amount")),
        "waiting": Conversation.objects.filter(needs_reply=True).count(),
        "tags": sorted(FanTag.objects.values_list("name", flat=True)),
        "usernames": sorted(Fan.objects.values_list("username", flat=True))[:20],
    }


def test_same_seed_same_data(db):
    call_command("seed_demo", *SMALL, "--seed", "7")
    first = _summary()
    call_command("seed_demo", "--reset", *SMALL, "--seed", "7")
    assert _summary() == first
    call_command("seed_demo", "--reset", *SMALL, "--seed", "8")
    assert _summary() != first


def test_counts_are_exact_and_the_tail_is_long(db):
    call_command("seed_demo", "--creators", "2", "--fans", "400", "--messages", "5000")
    assert Fan.objects.count() == 800
    assert Message.objects.count() == 5000
    totals = sorted(Fan.objects.values_list("total_spent", flat=True))
    top_percent = sum(totals[-8:])
    assert top_percent > sum(totals) * Decimal("0.1"), "the top 1% should hold a large share of the spend"
    assert Fan.objects.filter(total_spent__gte=FanRules().whale_min).exists()
    assert Fan.objects.filter(total_spent=0).exists() or Fan.objects.filter(subscription_state="none").exists()


def test_spend_buckets_are_the_sums_of_the_purchases(db):
    call_command("seed_demo", *SMALL)
    sums = {
        row["fan"]: row
        for row in Purchase.objects.values("fan").annotate(
            subscriptions=Sum("amount", filter=Q(kind=PurchaseKind.SUBSCRIPTION)),
            tips=Sum("amount", filter=Q(kind=PurchaseKind.TIP)),
            ppv=Sum("amount", filter=Q(kind=PurchaseKind.PPV)),
            messages=Sum("amount", filter=Q(kind=PurchaseKind.MESSAGE)),
            last=Max("purchased_at"),
        )
    }
    zero = Decimal("0")
    for fan in Fan.objects.all():
        row = sums.get(fan.pk, {})
        assert fan.spent_subscriptions == (row.get("subscriptions") or zero)
        assert fan.spent_tips == (row.get("tips") or zero)
        assert fan.spent_ppv == (row.get("ppv") or zero)
        assert fan.spent_messages == (row.get("messages") or zero)
        assert fan.total_spent == fan.spent_subscriptions + fan.spent_tips + fan.spent_ppv + fan.spent_messages
        assert fan.last_purchase_at == row.get("last")
    # PPV: offered = PPV messages sent, bought = those unlocked, each unlock a purchase of its price.
    ppv = Message.objects.values("fan").annotate(
        offered=Count("id", filter=Q(ppv_price__isnull=False)),
        bought=Count("id", filter=Q(unlocked_at__isnull=False)),
    )
    counts = {row["fan"]: row for row in ppv}
    for fan in Fan.objects.all():
        row = counts.get(fan.pk, {"offered": 0, "bought": 0})
        assert (fan.ppv_offered, fan.ppv_bought) == (row["offered"], row["bought"])
    for purchase in Purchase.objects.filter(kind=PurchaseKind.PPV).select_related("message"):
        assert purchase.message.ppv_price == purchase.amount and purchase.message.unlocked_at is not None


def test_conversation_columns_match_their_messages(db):
    call_command("seed_demo", *SMALL)
    conversations = list(Conversation.objects.select_related("fan"))
    assert conversations
    waiting = 0
    for conversation in conversations:
        history = list(Message.objects.filter(conversation=conversation).order_by("created_at", "id"))
        assert conversation.message_count == len(history) > 0
        last = history[-1]
        assert conversation.last_message_at == last.created_at
        assert conversation.last_message_direction == last.direction
        assert conversation.fan_value == conversation.fan.total_spent
        trailing = []
        for message in reversed(history):
            if message.direction != Direction.INBOUND:
                break
            trailing.append(message)
        assert conversation.needs_reply == bool(trailing)
        assert conversation.unread_count == len(trailing)
        assert conversation.waiting_since == (trailing[-1].created_at if trailing else None)
        waiting += conversation.needs_reply
        assert all(m.fan_id == conversation.fan_id and m.creator_id == conversation.creator_id for m in history)
    assert 0 < waiting < len(conversations), "some conversations wait for a reply, others were answered"


def test_outbound_messages_have_an_audit_trail(db):
    call_command("seed_demo", *SMALL)
    outbound = Message.objects.filter(direction=Direction.OUTBOUND)
    demo_users = set(User.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").values_list("pk", flat=True))
    assert set(outbound.exclude(source=Source.AUTOMATION).values_list("sent_by", flat=True)) <= demo_users
    assert not outbound.exclude(source=Source.AUTOMATION).filter(sent_by__isnull=True).exists()
    assert {Source.HUMAN, Source.AI_DRAFT, Source.TEMPLATE} <= set(outbound.values_list("source", flat=True))
    assert outbound.filter(source=Source.AI_DRAFT, edit_ratio__gt=0).exists()
    assert outbound.filter(source=Source.AI_DRAFT, edit_ratio=0).exists()
    assert outbound.filter(source=Source.TEMPLATE, template__isnull=False).exists()
    assert outbound.filter(ppv_price__isnull=False, unlocked_at__isnull=False).exists()
    assert outbound.filter(ppv_price__isnull=False, unlocked_at__isnull=True).exists()
    # The chatter answers only for the creators assigned to them.
    chatter = User.objects.get(email=f"chatter@{DEMO_DOMAIN}")
    assigned = set(CreatorAssignment.objects.filter(membership__user=chatter).values_list("creator_id", flat=True))
    assert set(outbound.filter(sent_by=chatter).values_list("creator_id", flat=True)) <= assigned


def test_rules_templates_segments_tags_and_notes(db):
    call_command("seed_demo", *SMALL)
    agency = Agency.objects.get()
    assert FanRules.objects.filter(agency=agency).count() == 1
    assert {"Whales", "At risk subscribers", "Bought in the last 7 days"} <= set(
        Segment.objects.values_list("name", flat=True)
    )
    assert len(set(MessageTemplate.objects.values_list("category", flat=True))) >= 6
    assert {"vip", "night owl"} <= set(FanTag.objects.values_list("name", flat=True))
    assert FanNote.objects.exists()


def test_reset_removes_every_messaging_row(db):
    call_command("seed_demo", *SMALL)
    reset()
    for model in (Fan, FanTag, FanNote, Conversation, Message, Purchase, MessageTemplate, Segment, FanRules):
        assert not model.objects.exists(), model.__name__


def test_default_is_ten_messages_a_fan(db):
    call_command("seed_demo", "--creators", "1", "--fans", "30")
    assert Message.objects.count() == 300


def test_no_fans_means_no_messages(db):
    call_command("seed_demo", "--creators", "1", "--fans", "0")
    assert not Message.objects.exists() and not Fan.objects.exists()


@pytest.mark.parametrize(
    "args",
    [["--messages", "-1"], ["--fans", "2", "--messages", "10000000"], ["--fans", "0", "--messages", "100"]],
)
def test_bad_message_counts_are_refused(db, args):
    with pytest.raises(CommandError):
        call_command("seed_demo", "--creators", "1", *args)


def test_allocate_is_exact_and_capped():
    counts = allocate(1000, [0, 1, 5, 100, 0.5], cap=600)
    assert sum(counts) == 1000 and counts[0] == 0 and max(counts) <= 600
    assert split(10, [3, 3, 3]) == [4, 3, 3]
    with pytest.raises(ValueError):
        allocate(100, [1, 0], cap=50)
