"""Automations: welcome, renewal-off, win-back and PPV follow-ups start on the fan's event, send
their steps after their delays, stop when the fan replies or buys, wait at the frequency cap, and
never message what happened before they were switched on."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.campaigns import automations
from apps.campaigns.automations import StepInput, automation_save, automations_tick
from apps.campaigns.models import AUTOMATION_SOURCE, Automation, AutomationRun, CampaignSettings
from apps.core.errors import ApplicationError
from apps.delivery.models import Delivery
from apps.delivery.services import delivery_send
from apps.messaging.models import Fan, Message, Source
from apps.messaging.services import fan_upsert, message_receive, purchase_record
from tests.campaigns.conftest import make_campaign
from tests.messaging.factories import FanFactory, MessageFactory

pytestmark = pytest.mark.django_db


def switch_on(world, kind, *steps, membership=None):
    steps = steps or (StepInput(delay_minutes=0 if kind != "ppv_followup" else 30, text="Hi {fan.first_name|babe}!"),)
    return automation_save(
        membership=membership or world.owner, creator=world.creator, kind=kind, enabled=True, steps=list(steps)
    )


def sent_to(fan):
    """What the platform was asked to send to this fan by automations, oldest first."""
    return list(Delivery.objects.filter(source=AUTOMATION_SOURCE, recipient_id=fan.platform_fan_id).order_by("id"))


def send_all():
    for delivery in Delivery.objects.filter(source=AUTOMATION_SOURCE, status="pending"):
        delivery_send(delivery_id=delivery.pk)


def later(minutes):
    return timezone.now() + timedelta(minutes=minutes)


# --- Validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        ([], "Write at least the first message"),
        ([StepInput(delay_minutes="soon", text="Hi")], "wait in minutes"),
        ([StepInput(delay_minutes=5, text="Hi {fan.age}")], "Unknown variable"),
        ([StepInput(delay_minutes=5, text="Hi", ppv_price="0.10", media=["v1"])], "PPV prices go from"),
        ([StepInput(delay_minutes=5, text="Hi", ppv_price="15")], "needs media"),
        ([StepInput(delay_minutes=5, text="x" * 1001)], "characters"),
        ([StepInput(delay_minutes=5, text="Hi")] * 4, "at most 3"),
        ([StepInput(delay_minutes=5, text="Hi"), StepInput(delay_minutes=2, text="Again")], "Message 2: wait from 10"),
    ],
)
def test_bad_steps_are_refused_with_the_step_named_and_nothing_saved(world, steps, words):
    with pytest.raises(ApplicationError) as error:
        automation_save(membership=world.owner, creator=world.creator, kind="welcome", enabled=True, steps=steps)
    assert words in error.value.message
    assert not Automation.objects.exists()


def test_a_ppv_follow_up_waits_at_least_half_an_hour(world):
    with pytest.raises(ApplicationError, match="wait from 30 minutes"):
        switch_on(world, "ppv_followup", StepInput(delay_minutes=5, text="Did you see it?"))


def test_only_owners_and_managers_change_automations(world):
    with pytest.raises(PermissionDenied):
        switch_on(world, "welcome", membership=world.chatter)
    switch_on(world, "welcome", membership=world.manager)
    assert Automation.objects.get().enabled


# --- Welcome --------------------------------------------------------------------------------------


def test_a_new_subscriber_is_welcomed_once_after_the_delay_with_their_name(world):
    switch_on(world, "welcome", StepInput(delay_minutes=5, text="Welcome {fan.first_name|babe}!"))
    fan, _ = fan_upsert(
        creator=world.creator, platform="onlyfans", platform_fan_id="of-new", username="newbie",
        display_name="Nina Newbie", subscribed_since=timezone.now(), subscription_state="active",
    )  # fmt: skip
    assert automations_tick()["started"] == 1
    assert sent_to(fan) == []  # not before its delay
    automations_tick(now=later(6))
    automations_tick(now=later(7))  # a second tick sends nothing more
    (delivery,) = sent_to(fan)
    assert delivery.text == "Welcome Nina!"
    assert delivery.queue == Delivery.Queue.AUTOMATED
    run = AutomationRun.objects.get()
    assert run.status == "done" and run.sent == 1


def test_subscribers_from_before_it_was_switched_on_are_not_welcomed(world):
    FanFactory(creator=world.creator, subscribed_since=timezone.now() - timedelta(hours=1))
    switch_on(world, "welcome")
    assert automations_tick()["started"] == 0
    assert not Delivery.objects.filter(source=AUTOMATION_SOURCE).exists()


def test_a_sent_welcome_shows_in_the_fans_conversation_as_an_automation(world):
    switch_on(world, "welcome", StepInput(delay_minutes=0, text="Welcome!"))
    fan = FanFactory(creator=world.creator, subscribed_since=timezone.now())
    automations_tick()
    send_all()
    assert automations_tick()["recorded"] == 1
    message = Message.objects.get(fan=fan)
    assert (message.text, message.source, message.status) == ("Welcome!", Source.AUTOMATION, "sent")
    assert automations_tick()["recorded"] == 0  # once


# --- PPV follow-ups: steps, and stopping on a reply or a purchase ----------------------------------


def ppv_offer(world, fan, minutes_ago=0):
    return MessageFactory(
        conversation__fan=fan, conversation__creator=world.creator, conversation__agency=world.agency,
        direction="out", source=Source.HUMAN, status="sent", text="Look 🔥", ppv_price=Decimal("15.00"),
        media_count=1, created_at=timezone.now() - timedelta(minutes=minutes_ago),
        sent_at=timezone.now() - timedelta(minutes=minutes_ago),
    )  # fmt: skip


FOLLOW_UPS = (
    StepInput(delay_minutes=60, text="Did you see it?"),
    StepInput(delay_minutes=120, text="Last chance!"),
)


def test_an_unbought_ppv_gets_its_follow_ups_in_order_after_their_delays(world):
    switch_on(world, "ppv_followup", *FOLLOW_UPS)
    fan = FanFactory(creator=world.creator)
    ppv_offer(world, fan)
    automations_tick()
    automations_tick(now=later(30))
    assert sent_to(fan) == []
    automations_tick(now=later(61))
    assert [d.text for d in sent_to(fan)] == ["Did you see it?"]
    automations_tick(now=later(61 + 60))
    assert len(sent_to(fan)) == 1  # the second waits two hours after the first
    automations_tick(now=later(61 + 121))
    assert [d.text for d in sent_to(fan)] == ["Did you see it?", "Last chance!"]
    assert AutomationRun.objects.get().status == "done"


def test_follow_ups_stop_when_the_fan_replies(world):
    switch_on(world, "ppv_followup", *FOLLOW_UPS)
    fan = FanFactory(creator=world.creator)
    ppv_offer(world, fan)
    automations_tick()
    automations_tick(now=later(61))
    message_receive(fan=fan, text="omg yes, one sec")
    automations_tick(now=later(200))
    assert len(sent_to(fan)) == 1
    run = AutomationRun.objects.get()
    assert run.status == "stopped" and "replied" in run.stop_reason


def test_follow_ups_stop_when_the_fan_unlocks_the_ppv(world):
    switch_on(world, "ppv_followup", *FOLLOW_UPS)
    fan = FanFactory(creator=world.creator)
    offer = ppv_offer(world, fan)
    automations_tick()
    purchase_record(fan=fan, kind="ppv", amount=Decimal("15.00"), message=offer)
    automations_tick(now=later(61))
    assert sent_to(fan) == []
    assert "unlocked" in AutomationRun.objects.get().stop_reason


def test_a_follow_up_with_a_ppv_of_its_own_never_starts_another_chain(world):
    switch_on(world, "ppv_followup", StepInput(delay_minutes=30, text="Half price", ppv_price="9", media=["v2"]))
    fan = FanFactory(creator=world.creator)
    ppv_offer(world, fan)
    automations_tick()
    automations_tick(now=later(31))
    send_all()
    automations_tick(now=later(32))  # records the follow-up (a locked PPV from the automation)
    assert Message.objects.filter(fan=fan, source=Source.AUTOMATION, ppv_price=Decimal("9")).exists()
    automations_tick(now=later(120))
    assert AutomationRun.objects.count() == 1


def test_switching_it_off_stops_its_runs(world):
    automation = switch_on(world, "ppv_followup", *FOLLOW_UPS)
    fan = FanFactory(creator=world.creator)
    ppv_offer(world, fan)
    automations_tick()
    automation_save(
        membership=world.owner, creator=world.creator, kind=automation.kind, enabled=False, steps=list(FOLLOW_UPS)
    )
    automations_tick(now=later(200))
    assert sent_to(fan) == []
    assert AutomationRun.objects.get().stop_reason == automations.STOPPED["switched_off"]


# --- Renewal off and win-back --------------------------------------------------------------------


def test_renewal_switched_off_gets_a_nudge_and_switching_it_back_on_stops_the_rest(world):
    switch_on(
        world, "renewal_off", StepInput(delay_minutes=0, text="I'd miss you!"), StepInput(delay_minutes=60, text="…")
    )
    fan = FanFactory(creator=world.creator, subscription_expires_at=timezone.now() + timedelta(days=5))
    fan_upsert(creator=world.creator, platform=fan.platform, platform_fan_id=fan.platform_fan_id, renew_on=False)
    automations_tick()
    assert [d.text for d in sent_to(fan)] == ["I'd miss you!"]
    fan_upsert(creator=world.creator, platform=fan.platform, platform_fan_id=fan.platform_fan_id, renew_on=True)
    automations_tick(now=later(61))
    assert len(sent_to(fan)) == 1
    assert "renewal back on" in AutomationRun.objects.get().stop_reason


def test_an_expired_fan_is_won_back_and_stops_on_resubscribing(world):
    switch_on(world, "expired", StepInput(delay_minutes=0, text="Miss you"), StepInput(delay_minutes=60, text="Again"))
    fan = FanFactory(creator=world.creator)
    fan_upsert(
        creator=world.creator, platform=fan.platform, platform_fan_id=fan.platform_fan_id,
        subscription_state="expired", subscription_expires_at=timezone.now(),
    )  # fmt: skip
    automations_tick(now=later(1))
    assert [d.text for d in sent_to(fan)] == ["Miss you"]
    fan_upsert(creator=world.creator, platform=fan.platform, platform_fan_id=fan.platform_fan_id,
               subscription_state="active")  # fmt: skip
    automations_tick(now=later(62))
    assert len(sent_to(fan)) == 1
    assert "subscribed again" in AutomationRun.objects.get().stop_reason


# --- The frequency cap, shared with campaigns -------------------------------------------------------


def test_a_fan_at_the_cap_waits_and_gets_the_step_once_under_it(world):
    CampaignSettings.objects.create(agency=world.agency, fan_cap_per_day=1)
    fan = FanFactory(creator=world.creator, subscribed_since=timezone.now() + timedelta(seconds=1))
    campaign = make_campaign(world, fan_ids=[fan.pk])
    from tests.campaigns.test_services import start

    start(campaign)
    switch_on(world, "welcome")
    automations_tick(now=later(1))
    assert sent_to(fan) == []
    run = AutomationRun.objects.get()
    assert run.status == "active" and run.next_at > later(50)
    Delivery.objects.filter(source="campaigns.campaign").update(created_at=timezone.now() - timedelta(hours=25))
    automations_tick(now=later(61))
    assert len(sent_to(fan)) == 1


def test_a_campaign_leaves_out_fans_at_the_cap(world):
    CampaignSettings.objects.create(agency=world.agency, fan_cap_per_day=2)
    capped, free = FanFactory(creator=world.creator), FanFactory(creator=world.creator)
    from tests.campaigns.test_services import start

    for _ in range(2):
        start(make_campaign(world, fan_ids=[capped.pk]))
    third = make_campaign(world, fan_ids=[capped.pk, free.pk])
    start(third)
    third.refresh_from_db()
    assert (third.targeted, third.excluded) == (1, 1)
    assert Delivery.objects.filter(source="campaigns.campaign", source_id=third.pk).get().recipient_id == (
        free.platform_fan_id
    )


def test_inbox_replies_do_not_count_toward_the_cap(world):
    CampaignSettings.objects.create(agency=world.agency, fan_cap_per_day=1)
    fan = FanFactory(creator=world.creator)
    from apps.delivery.services import delivery_enqueue

    delivery_enqueue(
        agency_id=world.agency.pk, creator_id=world.creator.pk, platform=fan.platform,
        recipient_id=fan.platform_fan_id, text="Typed by a chatter", idempotency_key="inbox-1",
        source="messaging.message",
    )  # fmt: skip
    campaign = make_campaign(world, fan_ids=[fan.pk])
    from tests.campaigns.test_services import start

    start(campaign)
    campaign.refresh_from_db()
    assert campaign.targeted == 1


def test_another_agencys_fans_never_start_runs(world, other_world):
    switch_on(world, "welcome")
    FanFactory(creator=other_world.creator, subscribed_since=timezone.now())
    assert automations_tick()["started"] == 0


def test_a_welcome_answers_the_new_fans_hello_but_not_after_a_member_wrote(world):
    switch_on(world, "welcome", StepInput(delay_minutes=10, text="Welcome!"))
    greeted = FanFactory(creator=world.creator, subscribed_since=timezone.now())
    answered = FanFactory(creator=world.creator, subscribed_since=timezone.now())
    automations_tick()
    message_receive(fan=greeted, text="hiii")
    message_receive(fan=answered, text="hiii")
    MessageFactory(
        conversation=answered.conversation, direction="out", source=Source.HUMAN, status="sent", text="hey you!",
        created_at=timezone.now() + timedelta(seconds=1),
    )  # fmt: skip
    automations_tick(now=later(11))
    assert len(sent_to(greeted)) == 1
    assert sent_to(answered) == []
    assert AutomationRun.objects.get(fan=answered).stop_reason == automations.STOPPED["answered"]


@pytest.mark.parametrize(
    ("minutes", "label"),
    [(0, "at once"), (5, "5 min"), (90, "1 h 30 min"), (1440, "1 day"), (4320 + 60, "3 days 1 h")],
)
def test_waits_read_as_a_member_says_them(minutes, label):
    from apps.campaigns.models import wait_label

    assert wait_label(minutes) == label


def test_a_burst_larger_than_a_batch_is_started_in_one_tick_and_never_twice(world):
    switch_on(world, "welcome", StepInput(delay_minutes=30, text="Welcome!"))
    burst = automations.DISCOVER_BATCH * 2 + 7
    now = timezone.now()
    Fan.objects.bulk_create(
        FanFactory.build(creator=world.creator, agency=world.agency, subscribed_since=now + timedelta(microseconds=i))
        for i in range(burst)
    )
    assert automations_tick()["started"] == burst
    assert automations_tick()["started"] == 0
    assert AutomationRun.objects.count() == burst


def test_two_runs_of_one_fan_due_together_still_respect_the_cap(world):
    CampaignSettings.objects.create(agency=world.agency, fan_cap_per_day=1)
    switch_on(world, "ppv_followup", StepInput(delay_minutes=30, text="Did you see it?"))
    fan = FanFactory(creator=world.creator)
    first = ppv_offer(world, fan)  # after the automation was switched on, as the second
    second_at = timezone.now() + timedelta(seconds=1)
    MessageFactory(
        conversation=first.conversation, direction="out", source=Source.HUMAN, status="sent", text="And this one",
        ppv_price=Decimal("20.00"), media_count=1, created_at=second_at, sent_at=second_at,
    )  # fmt: skip
    assert automations_tick()["started"] == 2
    counts = automations_tick(now=later(31))  # both due in the same batch
    assert (counts["sent"], counts["waiting"]) == (1, 1)
    assert len(sent_to(fan)) == 1
