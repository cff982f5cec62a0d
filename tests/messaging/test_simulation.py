"""SIMULATED fans: events go through the ingest services (conversations start waiting, purchases
add to spend), platform ids make a repeated event a no-op, and the beat task does nothing unless
SIMULATE_FANS is on."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models import Sum

from apps.accounts.demo import reset
from apps.accounts.models import Agency
from apps.messaging.models import Conversation, Direction, Fan, Message, Purchase, PurchaseKind
from apps.messaging.services import message_receive, purchase_record
from apps.messaging.simulation import simulate
from apps.messaging.tasks import simulate_fans_tick
from tests.messaging.factories import FanFactory


@pytest.fixture
def demo(db) -> Agency:
    call_command("seed_demo", "--creators", "2", "--fans", "40", "--messages", "300")
    return Agency.objects.get()


def test_inbound_messages_make_conversations_wait(demo):
    Conversation.objects.update(needs_reply=False, waiting_since=None, unread_count=0)
    before = Message.objects.filter(direction=Direction.INBOUND).count()
    report = simulate(agency_id=demo.pk, events=40, rng=random.Random(5))
    assert report.events >= 35 and report.counts.get("message", 0) > 0
    simulated = Message.objects.filter(platform_message_id__startswith="sim-msg-")
    assert simulated.count() > 0
    assert Message.objects.filter(direction=Direction.INBOUND).count() == before + simulated.count()
    for message in simulated.select_related("conversation"):
        assert message.conversation.needs_reply and message.conversation.waiting_since is not None
        assert message.conversation.unread_count >= 1
        assert message.agency_id == demo.pk


def test_purchases_add_to_spend_and_unlock_sent_ppv(demo):
    report = simulate(agency_id=demo.pk, events=120, rng=random.Random(11))
    assert {"tip", "ppv_unlock", "subscription"} <= set(report.counts)
    for fan in Fan.objects.filter(purchases__platform_purchase_id__startswith="sim-").distinct():
        assert fan.total_spent == fan.purchases.aggregate(s=Sum("amount"))["s"]
        assert fan.total_spent == fan.spent_subscriptions + fan.spent_tips + fan.spent_ppv + fan.spent_messages
        assert fan.conversation.fan_value == fan.total_spent
    unlocks = Purchase.objects.filter(platform_purchase_id__startswith="sim-ppv-").select_related("message")
    assert unlocks.exists()
    for purchase in unlocks:
        assert purchase.message.direction == Direction.OUTBOUND and purchase.message.ppv_price == purchase.amount
        assert purchase.message.unlocked_at == purchase.purchased_at
    new_fans = Fan.objects.filter(platform_fan_id__startswith="sim-")
    assert new_fans.exists() and all(f.purchases.filter(kind=PurchaseKind.SUBSCRIPTION).exists() for f in new_fans)


def test_platform_ids_make_a_repeated_event_a_no_op(demo):
    simulate(agency_id=demo.pk, events=60, rng=random.Random(3))
    message = Message.objects.filter(platform_message_id__startswith="sim-msg-").select_related("fan").first()
    purchase = Purchase.objects.filter(platform_purchase_id__startswith="sim-").select_related("fan").first()
    messages, purchases = Message.objects.count(), Purchase.objects.count()
    spent = Fan.objects.get(pk=purchase.fan_id).total_spent
    again = message_receive(fan=message.fan, text=message.text, platform_message_id=message.platform_message_id)
    repeat = purchase_record(
        fan=purchase.fan, kind=purchase.kind, amount=purchase.amount, platform_purchase_id=purchase.platform_purchase_id
    )
    assert again.pk == message.pk and repeat.pk == purchase.pk
    assert (Message.objects.count(), Purchase.objects.count()) == (messages, purchases)
    assert Fan.objects.get(pk=purchase.fan_id).total_spent == spent
    ids = list(Message.objects.exclude(platform_message_id="").values_list("conversation", "platform_message_id"))
    assert len(ids) == len(set(ids))


def test_only_the_given_agency_is_touched(demo, other_world):
    outsider = FanFactory(creator=other_world.creator, agency=other_world.agency)
    simulate(agency_id=demo.pk, events=50, rng=random.Random(9))
    assert not Message.objects.filter(agency=other_world.agency).exists()
    assert Fan.objects.filter(agency=other_world.agency).count() == 1
    assert Fan.objects.get(pk=outsider.pk).total_spent == Decimal("0")


def test_command_says_simulated(demo, capsys):
    call_command("simulate_fans", "--events", "10", "--seed", "1")
    out = capsys.readouterr().out
    assert out.startswith("Simulated 10 fan events") or "Simulated" in out
    from apps.messaging.management.commands.simulate_fans import Command

    assert "SIMULATED" in Command.help
    call_command("simulate_fans", "--agency", str(demo.pk), "--events", "5")


def test_command_refuses_without_an_agency(db):
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("simulate_fans")
    with pytest.raises(CommandError):
        call_command("simulate_fans", "--agency", "999999")
    with pytest.raises(CommandError):
        call_command("simulate_fans", "--agency", "1", "--events", "0")


def test_beat_task_does_nothing_when_switched_off(demo, settings):
    settings.SIMULATE_FANS = False
    messages = Message.objects.count()
    assert simulate_fans_tick() == 0
    assert Message.objects.count() == messages


def test_beat_task_simulates_the_demo_agency_when_on(demo, settings):
    settings.SIMULATE_FANS = True
    messages = Message.objects.count()
    assert simulate_fans_tick(events=6) >= 1
    assert Message.objects.count() > messages
    reset()
    assert simulate_fans_tick() == 0  # no demo agency: nothing to do


def test_beat_schedules_it_every_thirty_seconds():
    entry = settings.CELERY_BEAT_SCHEDULE["simulate-fans"]
    assert entry == {"task": "apps.messaging.tasks.simulate_fans_tick", "schedule": 30}
    assert settings.SIMULATE_FANS is False  # off unless the environment (make run) turns it on
