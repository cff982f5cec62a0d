"""Campaign services: validation, preview, schedule and approval, start (bulk deliveries with
per-fan text and exclusions), pause, resume, cancel, completion."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.campaigns import services
from apps.campaigns.models import DELIVERY_SOURCE, Campaign, CampaignSettings, CampaignStatus
from apps.core.errors import ApplicationError, ConflictError
from apps.delivery.models import Delivery
from apps.delivery.services import delivery_pump
from apps.delivery.simulated import SimulatedConnector
from apps.notifications.models import Notification
from tests.campaigns.conftest import campaign_input, make_campaign
from tests.messaging.factories import FanFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def start(campaign):
    """Schedule (as the owner) and start it now, as the task would."""
    services.campaign_schedule(membership=campaign_owner(campaign), campaign=campaign)
    return services.campaign_start(campaign_id=campaign.pk)


def campaign_owner(campaign):
    from apps.accounts.models import Membership, Role

    return Membership.objects.get(agency_id=campaign.agency_id, role=Role.OWNER)


def deliveries(campaign):
    return Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=campaign.pk).order_by("id")


# --- Validation: clear errors, nothing saved --------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"name": "  "}, "name", "name"),
        ({"text": "", "media": ["vault-1"]}, "text", "Write the message"),
        ({"text": "Hi {fan.age}"}, "text", "Unknown variable"),
        ({"ppv_price": Decimal("0.50"), "media": ["vault-1"]}, "ppv_price", "PPV prices go from"),
        ({"ppv_price": Decimal("15.00"), "media": []}, "media", "needs media"),
        ({"send_at": "past"}, "send_at", "has passed"),
        ({"segment": None, "fan_ids": []}, "segment", "Choose the audience"),
    ],
)
def test_bad_input_is_refused_with_the_field_named_and_nothing_saved(world, fans, overrides, field, words):
    if overrides.get("send_at") == "past":
        overrides["send_at"] = timezone.now() - timedelta(hours=2)
    overrides.setdefault("fan_ids", [fan.pk for fan in fans])
    with pytest.raises(ApplicationError) as caught:
        make_campaign(world, **overrides)
    assert caught.value.field == field
    assert words in caught.value.message
    assert not Campaign.objects.exists()


def test_text_over_the_platform_limit_is_refused(world, fans):
    with pytest.raises(ApplicationError, match="1001 characters; OnlyFans allows 1000"):
        make_campaign(world, text="x" * 1001, fan_ids=[fans[0].pk])


def test_another_creators_fans_or_segment_are_refused(world, fans):
    stranger = FanFactory(creator=world.other_creator)
    with pytest.raises(ApplicationError, match="not Velvet Star's fans"):
        make_campaign(world, fan_ids=[fans[0].pk, stranger.pk])
    other_segment = SegmentFactory(agency=world.agency, creator=world.other_creator)
    with pytest.raises(ApplicationError, match="another creator"):
        make_campaign(world, segment=other_segment)


def test_a_chatter_cannot_campaign_for_a_creator_they_are_not_assigned(world):
    fan = FanFactory(creator=world.other_creator)
    with pytest.raises(PermissionDenied):
        make_campaign(world, world.chatter, creator=world.other_creator, fan_ids=[fan.pk])
    with pytest.raises(PermissionDenied):
        make_campaign(world, world.viewer, fan_ids=[fan.pk])


# --- Preview ----------------------------------------------------------------------------------


def test_preview_shows_three_personalised_messages_and_the_counts(world, fans):
    fans[0].last_purchase_at = timezone.now() - timedelta(days=2)
    fans[0].save()
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans], exclude_no_spend_days=30)
    preview = services.campaign_preview(campaign=campaign)
    assert (preview.audience, preview.excluded, preview.recipients) == (5, 4, 1)
    assert preview.messages == [(fans[0], "Hey Fan0, new set tonight!")]
    assert preview.problems == []


def test_preview_of_an_empty_audience_says_so(world):
    segment = SegmentFactory(agency=world.agency, creator=world.creator, filters={"tiers": ["whale"]})
    campaign = make_campaign(world, segment=segment)
    preview = services.campaign_preview(campaign=campaign)
    assert preview.audience == 0
    assert preview.problems and "Nobody to send to" in preview.problems[0]
    with pytest.raises(ApplicationError, match="Nobody to send to"):
        services.campaign_schedule(membership=world.owner, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


# --- Start: bulk deliveries, one per fan, exactly once ----------------------------------------


def test_start_writes_one_personalised_delivery_per_fan_once(world, fans, django_capture_on_commit_callbacks):
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans], ppv_price=Decimal("12.00"), media=["vault-7"])
    with django_capture_on_commit_callbacks():
        assert start(campaign) == CampaignStatus.SENDING
    assert services.campaign_start(campaign_id=campaign.pk) == "skipped"  # a second start writes nothing
    rows = list(deliveries(campaign))
    assert [row.recipient_id for row in rows] == [fan.platform_fan_id for fan in fans]
    assert rows[0].text == "Hey Fan0, new set tonight!"
    assert {(row.ppv_price, row.media_count, row.queue) for row in rows} == {(Decimal("12.00"), 1, "bulk")}
    campaign.refresh_from_db()
    assert (campaign.targeted, campaign.excluded, campaign.status) == (5, 0, CampaignStatus.SENDING)


def test_recently_messaged_fans_are_excluded(world, fans, django_capture_on_commit_callbacks):
    first = make_campaign(world, fan_ids=[fans[0].pk, fans[1].pk])
    with django_capture_on_commit_callbacks():
        start(first)
    delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    assert deliveries(first).filter(status="sent").count() == 2
    second = make_campaign(world, fan_ids=[fan.pk for fan in fans], exclude_messaged_within_hours=24)
    with django_capture_on_commit_callbacks():
        start(second)
    assert sorted(deliveries(second).values_list("recipient_id", flat=True)) == sorted(
        fan.platform_fan_id for fan in fans[2:]
    )
    second.refresh_from_db()
    assert (second.targeted, second.excluded) == (3, 2)


def test_a_scheduled_campaign_waits_for_its_time(world, fans, django_capture_on_commit_callbacks):
    campaign = make_campaign(world, fan_ids=[fans[0].pk], send_at=timezone.now() + timedelta(hours=3))
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    assert services.campaign_start(campaign_id=campaign.pk) == "skipped"
    Campaign.objects.filter(pk=campaign.pk).update(send_at=timezone.now() - timedelta(seconds=5))
    with django_capture_on_commit_callbacks():
        assert services.campaign_start(campaign_id=campaign.pk) == CampaignStatus.SENDING
    assert deliveries(campaign).count() == 1


def test_naive_send_time_is_read_in_the_creators_timezone(world, fans):
    world.creator.timezone = "America/New_York"
    world.creator.save()
    local = (timezone.now() + timedelta(days=2)).replace(tzinfo=None, microsecond=0)
    campaign = make_campaign(world, fan_ids=[fans[0].pk], send_at=local)
    campaign.refresh_from_db()
    assert campaign.send_at == local.replace(tzinfo=ZoneInfo("America/New_York"))
    assert campaign.send_at.astimezone(ZoneInfo("UTC")).replace(tzinfo=None) != local  # 4-5 h apart


# --- Approval ---------------------------------------------------------------------------------


def test_a_chatters_large_campaign_waits_for_a_managers_approval(world, fans, django_capture_on_commit_callbacks):
    CampaignSettings.objects.create(agency=world.agency, approval_above=3)
    campaign = make_campaign(world, world.chatter, fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        services.campaign_schedule(membership=world.chatter, campaign=campaign)
    assert campaign.status == CampaignStatus.AWAITING_APPROVAL
    assert Notification.objects.filter(user=world.manager.user, title__contains="Approve").exists()
    assert services.campaign_start(campaign_id=campaign.pk) == "skipped"
    with pytest.raises(PermissionDenied):
        services.campaign_approve(membership=world.chatter, campaign=campaign)
    with django_capture_on_commit_callbacks():
        services.campaign_approve(membership=world.manager, campaign=campaign)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.approved_by_id) == (CampaignStatus.SCHEDULED, world.manager.user_id)


def test_small_campaigns_and_managers_need_no_approval(world, fans, django_capture_on_commit_callbacks):
    CampaignSettings.objects.create(agency=world.agency, approval_above=3)
    small = make_campaign(world, world.chatter, fan_ids=[fans[0].pk])
    large = make_campaign(world, world.manager, fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        services.campaign_schedule(membership=world.chatter, campaign=small)
        services.campaign_schedule(membership=world.manager, campaign=large)
    assert (small.status, large.status) == (CampaignStatus.SCHEDULED, CampaignStatus.SCHEDULED)


# --- Pause, resume, cancel, complete -----------------------------------------------------------


def test_pause_holds_every_unsent_delivery_and_resume_sends_them(world, fans, django_capture_on_commit_callbacks):
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        start(campaign)
    services.campaign_pause(membership=world.owner, campaign=campaign)
    assert set(deliveries(campaign).values_list("status", flat=True)) == {"held"}
    assert delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=2).get("sent", 0) == 0
    with django_capture_on_commit_callbacks() as callbacks:
        services.campaign_resume(membership=world.owner, campaign=campaign)
    assert callbacks, "resume wakes the account's pump"
    delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    assert set(deliveries(campaign).values_list("status", flat=True)) == {"sent"}
    assert services.campaigns_tick()["completed"] == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED
    done = Notification.objects.get(user=world.owner.user, title__contains="is done")
    assert "Sent to 5 of 5 fans" in done.body


def test_cancel_stops_what_is_unsent_and_keeps_what_was_sent(world, fans, django_capture_on_commit_callbacks):
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        start(campaign)
    Delivery.objects.filter(pk=deliveries(campaign).first().pk).update(status="sent", sent_at=timezone.now())
    services.campaign_cancel(membership=world.owner, campaign=campaign)
    statuses = list(deliveries(campaign).values_list("status", flat=True))
    assert statuses == ["sent", "cancelled", "cancelled", "cancelled", "cancelled"]
    stats = services.campaign_stats(campaigns=[campaign])[campaign.pk]
    assert (stats.sent, stats.cancelled, stats.unfinished, stats.percent) == (1, 4, 0, 100)
    with pytest.raises(ConflictError, match="cancelled"):
        services.campaign_resume(membership=world.owner, campaign=campaign)


def test_editing_a_scheduled_campaign_returns_it_to_draft(world, fans):
    campaign = make_campaign(world, fan_ids=[fans[0].pk], send_at=timezone.now() + timedelta(days=1))
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    services.campaign_update(
        membership=world.owner, campaign=campaign, data=campaign_input(world, fan_ids=[fans[1].pk], text="Changed")
    )
    campaign.refresh_from_db()
    assert (campaign.status, campaign.text, campaign.fan_ids) == (CampaignStatus.DRAFT, "Changed", [fans[1].pk])


def test_a_failing_campaign_tells_its_author_once(world, django_capture_on_commit_callbacks):
    fans = [FanFactory(creator=world.creator) for _ in range(30)]
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        start(campaign)
    ids = list(deliveries(campaign).values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=ids[:15]).update(status="sent", sent_at=timezone.now())
    Delivery.objects.filter(pk__in=ids[15:25]).update(status="dead", last_error="Platform said: account suspended")
    assert services.campaigns_tick()["failing"] == 1
    assert services.campaigns_tick()["failing"] == 0
    told = Notification.objects.filter(user=world.owner.user, title__contains="is failing")
    assert told.count() == 1
    assert "10 of 25" in told.get().body and "account suspended" in told.get().body


def test_dead_campaign_deliveries_are_not_announced_one_by_one(world, django_capture_on_commit_callbacks):
    """The pipeline's per-delivery dead notice is for inbox replies; a campaign's are reported together."""
    fans = [FanFactory(creator=world.creator, platform_fan_id=f"fail-permanent-{index}") for index in range(3)]
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        start(campaign)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    assert set(deliveries(campaign).values_list("status", flat=True)) == {"dead"}
    assert not Notification.objects.filter(title__contains="could not be delivered").exists()
    services.campaigns_tick()
    done = Notification.objects.get(title__contains="is done")
    assert "3 could not be delivered" in done.body


def test_sent_messages_join_the_fans_threads_and_unlocks_count_as_campaign_revenue(
    world, fans, django_capture_on_commit_callbacks
):
    from apps.messaging.models import Conversation, Message, PurchaseKind
    from apps.messaging.services import purchase_record

    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans[:3]], ppv_price=Decimal("15.00"), media=["v-1"])
    with django_capture_on_commit_callbacks():
        start(campaign)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    assert not Message.objects.filter(campaign_id=campaign.pk).exists()  # the pump never waits for this
    services.campaigns_tick()
    services.campaigns_tick()  # recording twice records once
    messages = Message.objects.filter(campaign_id=campaign.pk).order_by("fan_id")
    assert [(m.fan_id, m.source, m.status, m.text) for m in messages] == [
        (fan.pk, "campaign", "sent", f"Hey Fan{index}, new set tonight!") for index, fan in enumerate(fans[:3])
    ]
    thread = Conversation.objects.get(fan=fans[0])
    assert (thread.message_count, thread.last_message_direction) == (1, "out")
    assert thread.last_message_preview == "Hey Fan0, new set tonight!"
    fans[0].refresh_from_db()
    assert fans[0].ppv_offered == 1

    purchase_record(fan=fans[0], kind=PurchaseKind.PPV, amount=Decimal("15.00"), message=messages[0])
    purchase_record(fan=fans[1], kind=PurchaseKind.TIP, amount=Decimal("5.00"))  # not the campaign's
    stats = services.campaign_stats(campaigns=[campaign])[campaign.pk]
    assert (stats.sent, stats.unlocked, stats.revenue) == (3, 1, {"USD": Decimal("15.00")})


def test_a_campaign_completes_only_once_every_sent_message_is_in_the_threads(
    world, fans, monkeypatch, django_capture_on_commit_callbacks
):
    from apps.messaging.models import Message

    monkeypatch.setattr(services, "RECORD_BATCH", 2)
    monkeypatch.setattr(services, "RECORD_SECONDS", 0)  # one batch a tick
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        start(campaign)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    outcomes = [services.campaigns_tick()["completed"] for _ in range(3)]
    assert outcomes == [0, 0, 1]
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 5


def test_the_recently_messaged_exclusion_looks_each_fan_up_in_an_index(world):
    """One index look-up per fan of the audience, not a scan of the agency's sent deliveries per
    fan (which is what SQLite planned before delivery_recipient_idx: minutes at 100,000 fans)."""
    from django.db import connection

    campaign = make_campaign(world, fan_ids=[FanFactory(creator=world.creator).pk], exclude_messaged_within_hours=24)
    _, kept = services.campaign_audience(campaign)
    sql, params = kept.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "USING INDEX delivery_recipient_idx" in plan, plan
        else:  # PostgreSQL: the index exists for the planner (it picks per table size)
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'delivery_recipient_idx'")
            assert "creator_id, platform, recipient_id, status, sent_at" in cursor.fetchone()[0]


# --- Cancel while a message is being handed to the platform -----------------------------------


class CancelledDuringTheCall(SimulatedConnector):
    """The simulated platform, with the campaign's owner pressing *Cancel* while the platform call
    is in flight (between the pump's claim and the platform's answer)."""

    def send_many(self, deliveries):
        for campaign in Campaign.objects.filter(pk__in={delivery.source_id for delivery in deliveries}):
            if campaign.is_cancellable:
                services.campaign_cancel(membership=campaign_owner(campaign), campaign=campaign)
        return super().send_many(deliveries)


@pytest.fixture
def cancelled_during_the_call(settings):
    settings.DELIVERY_CONNECTORS = {"onlyfans": "tests.campaigns.test_services.CancelledDuringTheCall"}
    settings.DELIVERY_RETRY_BASE_SECONDS = 0  # a retry would be due at once
    settings.DELIVERY_RETRY_MAX_SECONDS = 0


def test_a_send_that_fails_while_its_campaign_is_cancelled_is_never_retried(
    world, cancelled_during_the_call, django_capture_on_commit_callbacks
):
    from apps.delivery.models import SimulatedOutboundMessage
    from apps.delivery.services import delivery_sweep
    from apps.delivery.tasks import deliver

    fan = FanFactory(creator=world.creator, platform_fan_id="fail-retry-1")  # the platform is down once
    campaign = make_campaign(world, fan_ids=[fan.pk])
    with django_capture_on_commit_callbacks():
        start(campaign)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=2)
        [delivery] = deliveries(campaign)
        assert (delivery.status, delivery.attempts) == ("cancelled", 1)
        assert deliver(delivery.pk) == "skipped"  # the retry task a failure would have published
        Delivery.objects.filter(pk=delivery.pk).update(lease_until=timezone.now() - timedelta(minutes=5))
        assert delivery_sweep()["lease_expired"] == 0
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=1)
    assert not SimulatedOutboundMessage.objects.exists()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert services.campaign_stats(campaigns=[campaign])[campaign.pk].cancelled == 1


def test_a_message_the_platform_took_while_its_campaign_was_cancelled_counts_as_sent_and_joins_the_thread(
    world, fans, cancelled_during_the_call, django_capture_on_commit_callbacks
):
    from apps.messaging.models import Message

    campaign = make_campaign(world, fan_ids=[fans[0].pk])
    with django_capture_on_commit_callbacks():
        start(campaign)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=2)
    assert list(deliveries(campaign).values_list("status", flat=True)) == ["sent"]
    services.campaigns_tick()
    message = Message.objects.get(campaign_id=campaign.pk)
    assert (message.fan_id, message.text) == (fans[0].pk, "Hey Fan0, new set tonight!")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED
    assert services.campaign_stats(campaigns=[campaign])[campaign.pk].sent == 1


# --- Re-queueing a dead letter follows the campaign's state -----------------------------------


def dead_letter_of(world, fans, django_capture_on_commit_callbacks):
    """A campaign to two fans: the first sent and in its thread, the second a dead letter."""
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans[:2]])
    with django_capture_on_commit_callbacks():
        start(campaign)
    _, second = deliveries(campaign)
    Delivery.objects.filter(pk=second.pk).update(status="dead", last_error="The platform was down.")
    with django_capture_on_commit_callbacks(execute=True):
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=2)
    return campaign, second


def test_a_completed_campaigns_re_queued_dead_letter_is_sent_and_reaches_the_fans_thread(
    world, fans, django_capture_on_commit_callbacks
):
    from apps.delivery.tasks import deliver
    from apps.messaging.models import Message

    campaign, dead = dead_letter_of(world, fans, django_capture_on_commit_callbacks)
    assert services.campaigns_tick()["completed"] == 1
    campaign.refresh_from_db()
    services.campaign_delivery_requeue(membership=world.owner, campaign=campaign, delivery_id=dead.pk)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.finished_at) == (CampaignStatus.SENDING, None)
    assert deliver(dead.pk) == "sent"
    assert services.campaigns_tick()["completed"] == 1
    assert set(Message.objects.filter(campaign_id=campaign.pk).values_list("fan_id", flat=True)) == {
        fans[0].pk,
        fans[1].pk,
    }
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.COMPLETED and campaign.finished_at is not None


def test_a_paused_campaigns_re_queued_dead_letter_waits_for_the_resume(world, fans, django_capture_on_commit_callbacks):
    from apps.delivery.tasks import deliver

    campaign, dead = dead_letter_of(world, fans, django_capture_on_commit_callbacks)
    services.campaign_pause(membership=world.owner, campaign=campaign)
    services.campaign_delivery_requeue(membership=world.owner, campaign=campaign, delivery_id=dead.pk)
    assert deliver(dead.pk) == "skipped"
    dead.refresh_from_db()
    assert dead.status == "held"
    with django_capture_on_commit_callbacks():
        services.campaign_resume(membership=world.owner, campaign=campaign)
    assert deliver(dead.pk) == "sent"


def test_a_cancelled_campaigns_dead_letter_is_not_re_queued(world, fans, django_capture_on_commit_callbacks):
    campaign, dead = dead_letter_of(world, fans, django_capture_on_commit_callbacks)
    services.campaign_cancel(membership=world.owner, campaign=campaign)
    with pytest.raises(ConflictError, match="cancelled: nothing more is sent"):
        services.campaign_delivery_requeue(membership=world.owner, campaign=campaign, delivery_id=dead.pk)
    dead.refresh_from_db()
    assert dead.status == "dead"


def test_a_tick_that_counted_before_a_completion_and_a_re_queue_does_not_tell_the_author_twice(
    world, fans, django_capture_on_commit_callbacks
):
    """Two ticks overlap: the second counts the campaign's deliveries (one sent, one dead) while it
    is sending; before it completes it, the first one completes it (the author is told) and the
    author re-queues the dead letter (sending again, the letter pending). The second tick must not
    complete it again on its old numbers: that would tell the author twice for one completion and
    close the campaign before the re-sent message reaches the fan's thread. Each real completion
    tells once: the one after the re-sent letter went out tells again, with the new numbers."""
    from django.db import connection

    from apps.delivery.tasks import deliver
    from apps.messaging.models import Message

    campaign, dead = dead_letter_of(world, fans, django_capture_on_commit_callbacks)
    raced = []

    def first_tick_and_re_queue_meanwhile(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not raced and sql.startswith("SELECT") and "COUNT(" in sql and f'"{Delivery._meta.db_table}"' in sql:
            raced.append(sql)  # the second tick has counted; now the first one and the author act
            assert services.campaigns_tick()["completed"] == 1
            stale = Campaign.objects.get(pk=campaign.pk)
            services.campaign_delivery_requeue(membership=world.owner, campaign=stale, delivery_id=dead.pk)
        return result

    with connection.execute_wrapper(first_tick_and_re_queue_meanwhile):
        second = services.campaigns_tick()
    assert raced
    told = Notification.objects.filter(user=world.owner.user, title__contains="is done")
    assert list(told.values_list("body", flat=True)) == [
        "Sent to 1 of 2 fans. 1 could not be delivered (dead letters, re-queueable from the campaign page)."
    ]
    assert second["completed"] == 0
    campaign.refresh_from_db()
    assert (campaign.status, campaign.finished_at) == (CampaignStatus.SENDING, None)

    assert deliver(dead.pk) == "sent"
    assert services.campaigns_tick()["completed"] == 1
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 2
    assert told.count() == 2 and told.order_by("-id").first().body == "Sent to 2 of 2 fans."


# --- The tick: every campaign gets its turn ----------------------------------------------------


def test_paused_campaigns_beyond_the_ticks_limit_keep_neither_holds_nor_completions_waiting(
    world, fans, django_capture_on_commit_callbacks
):
    from apps.messaging.models import Message

    paused = []
    for fan in fans[:3]:
        campaign = make_campaign(world, fan_ids=[fan.pk])
        with django_capture_on_commit_callbacks():
            start(campaign)
        paused.append(services.campaign_pause(membership=world.owner, campaign=campaign))
    sending = make_campaign(world, fan_ids=[fans[3].pk])
    with django_capture_on_commit_callbacks():
        start(sending)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=2)
    # A retry of the last paused campaign's attempt in flight came back meanwhile.
    Delivery.objects.filter(source_id=paused[-1].pk).update(status="failed")

    outcomes = [services.campaigns_tick(limit=2) for _ in range(2)]
    assert sum(outcome["completed"] for outcome in outcomes) == 1
    sending.refresh_from_db()
    assert sending.status == CampaignStatus.COMPLETED
    assert Message.objects.filter(campaign_id=sending.pk, fan=fans[3]).exists()
    assert outcomes[0]["held"] == 1
    assert list(Delivery.objects.filter(source_id=paused[-1].pk).values_list("status", flat=True)) == ["held"]


def test_a_tick_that_finds_its_messages_recorded_by_an_overlapping_tick_goes_on(
    world, fans, django_capture_on_commit_callbacks
):
    """Two ticks at once read the same unrecorded messages; the second one's insert then meets the
    first one's rows (the unique message key). It leaves that campaign to the next tick and goes
    on with the others, instead of failing."""
    from django.db import IntegrityError, connection

    from apps.messaging.models import Message

    campaigns = [make_campaign(world, fan_ids=[fan.pk]) for fan in fans[:2]]
    for campaign in campaigns:
        with django_capture_on_commit_callbacks():
            start(campaign)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=2)
    raced = []

    def other_tick_got_there_first(execute, sql, params, many, context):
        if not raced and sql.startswith(f'INSERT INTO "{Message._meta.db_table}"'):
            raced.append(sql)
            raise IntegrityError("UNIQUE constraint failed: message_idempotency_key_unique")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(other_tick_got_there_first):
        first = services.campaigns_tick()
    assert raced and first["completed"] == 1
    assert services.campaigns_tick()["completed"] == 1
    assert Message.objects.filter(campaign_id__in=[campaign.pk for campaign in campaigns]).count() == 2
