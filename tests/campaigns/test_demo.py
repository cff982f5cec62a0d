"""The campaigns demo hook: the first creator's sent, scheduled and draft campaigns, made through
the services; repeatable, quick at the real send limits, and removed by ``seed_demo --reset``."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from django.core.management import call_command
from django.utils import timezone

from apps.accounts.demo import reset
from apps.accounts.models import Creator, Membership
from apps.campaigns import demo, services
from apps.campaigns.automations import automations_tick
from apps.campaigns.models import DELIVERY_SOURCE, Automation, Campaign, CampaignStatus
from apps.core.registry import demo_seeders
from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.messaging.models import Fan
from apps.messaging.selectors import fan_audience
from apps.notifications.models import Notification

SMALL = ["--creators", "2", "--fans", "60", "--messages", "300"]
# The installation's defaults (huntaze/settings.py), not the test run's generous limits.
DEFAULT_RATE_LIMITS = {
    "account": {"limit": 1, "seconds": 3, "burst": 1},
    "creator": {"limit": 1, "seconds": 1, "burst": 3},
    "agency": {"limit": 25, "seconds": 1, "burst": 50},
    "global": {"limit": 500, "seconds": 1, "burst": 1000},
}


def _seed(*args: str) -> None:
    call_command("seed_demo", *args, stdout=io.StringIO())


def _campaigns() -> dict[str, Campaign]:
    return {campaign.name: campaign for campaign in Campaign.objects.select_related("creator", "segment", "created_by")}


def _role(campaign: Campaign) -> str:
    return Membership.objects.get(agency_id=campaign.agency_id, user_id=campaign.created_by_id).role


def _summary() -> list:
    """Everything but ids and platform ids (fans' platform ids carry their creator's id)."""
    rows = []
    for name, campaign in sorted(_campaigns().items()):
        fans = Fan.objects.filter(pk__in=campaign.fan_ids).order_by("username").values_list("username", flat=True)
        zone = ZoneInfo(campaign.creator.timezone)
        deliveries = Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=campaign.pk).values_list(
            "text", "status"
        )
        rows.append(
            (
                name, campaign.status, campaign.targeted, campaign.excluded, campaign.text, list(fans),
                campaign.segment.name if campaign.segment else None, campaign.ppv_price, campaign.media,
                campaign.send_at.astimezone(zone).isoformat() if campaign.send_at else None, sorted(deliveries),
            )
        )  # fmt: skip
    return rows


def test_it_runs_after_messaging_whose_fans_and_segments_it_uses():
    names = [module.__name__ for module in demo_seeders()]
    assert (
        names.index("apps.messaging.demo") < names.index("apps.campaigns.demo") < names.index("apps.notifications.demo")
    )


def test_the_first_creator_gets_a_sent_a_scheduled_and_a_draft_campaign(db):
    _seed(*SMALL)
    creator = Creator.objects.get(display_name="Luna Vale")
    campaigns = _campaigns()
    assert set(campaigns) == {"Thank you, top fans", "Tomorrow night's set", "Weekend PPV: the full set"}
    assert {campaign.creator_id for campaign in campaigns.values()} == {creator.pk}

    sent = campaigns["Thank you, top fans"]
    top = list(Fan.objects.filter(creator=creator).order_by("-total_spent", "id").values_list("pk", flat=True))
    assert sorted(sent.fan_ids) == sorted(top[: demo.AUDIENCE]) and _role(sent) == "manager"
    assert (sent.status, sent.targeted, sent.excluded) == (CampaignStatus.SENDING, demo.AUDIENCE, 0)
    deliveries = Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=sent.pk)
    # The test run's limits let the seed's pump send them all; each fan read their own name.
    assert deliveries.filter(status=Delivery.Status.SENT).count() == demo.AUDIENCE
    assert SimulatedOutboundMessage.objects.filter(creator=creator).count() == demo.AUDIENCE
    assert not deliveries.filter(text__contains="{").exists()
    # Seeding told nobody anything about campaigns: only accounts' welcome notifications and the
    # optimization demo's unusual numbers and the workflows demo's finished runs.
    others = Notification.objects.exclude(title__startswith="Welcome").exclude(url__startswith="/workflows/runs/")
    assert not others.exclude(url="/optimization/anomalies/").exists()
    assert services.campaigns_tick()["completed"] == 1  # what beat's tick does within 10 s of `make run`
    sent.refresh_from_db()
    assert sent.status == CampaignStatus.COMPLETED

    scheduled = campaigns["Tomorrow night's set"]
    zone = ZoneInfo(creator.timezone)
    tomorrow = timezone.now().astimezone(zone).date() + timedelta(days=1)
    assert scheduled.status == CampaignStatus.SCHEDULED and _role(scheduled) == "chatter"
    assert scheduled.send_at == datetime.combine(tomorrow, clock(20, 0), tzinfo=zone)
    assert scheduled.segment is not None and scheduled.fan_ids == []
    assert fan_audience(agency_id=creator.agency_id, creator_id=creator.pk, segment=scheduled.segment).exists()
    assert not Delivery.objects.filter(source_id=scheduled.pk).exists()

    draft = campaigns["Weekend PPV: the full set"]
    assert draft.status == CampaignStatus.DRAFT and _role(draft) == "owner"
    assert creator.ppv_price_min <= draft.ppv_price <= creator.ppv_price_max and draft.media_count == 2


def test_same_seed_same_campaigns_and_reset_removes_them(db):
    _seed(*SMALL, "--seed", "7")
    first = _summary()
    assert len(first) == 3
    _seed("--reset", *SMALL, "--seed", "7")
    assert _summary() == first
    reset()
    for model in (Campaign, Delivery, SimulatedOutboundMessage):
        assert not model.objects.exists(), model.__name__


def test_without_fans_only_the_draft_is_made(db):
    _seed("--creators", "1", "--fans", "0")
    campaigns = _campaigns()
    assert [(c.name, c.status) for c in campaigns.values()] == [("Weekend PPV: the full set", CampaignStatus.DRAFT)]
    assert not Delivery.objects.exists()


def test_at_the_real_send_limits_the_seed_does_not_wait(db, settings):
    """One message every 3 s per account: the seed sends what the limits allow at once and leaves
    the rest pending for the worker's pump, instead of sleeping through a minute of sends."""
    settings.DELIVERY_RATE_LIMITS = DEFAULT_RATE_LIMITS
    _seed(*SMALL)
    sent = _campaigns()["Thank you, top fans"]
    deliveries = Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=sent.pk)
    assert deliveries.filter(status=Delivery.Status.SENT).count() == 1
    assert deliveries.filter(status=Delivery.Status.PENDING).count() == demo.AUDIENCE - 1
    assert sent.status == CampaignStatus.SENDING


def test_the_first_creator_welcomes_and_follows_up_by_itself_and_seeding_messaged_nobody(db):
    _seed(*SMALL)
    creator = Creator.objects.get(display_name="Luna Vale")
    automations = {a.kind: a for a in Automation.objects.filter(creator=creator)}
    assert set(automations) == {"welcome", "ppv_followup"}
    assert all(a.enabled and a.steps for a in automations.values())
    # Switched on during the seed: the seeded history (older) starts nothing.
    assert automations_tick()["started"] == 0
