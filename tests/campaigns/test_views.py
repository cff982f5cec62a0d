"""Campaign pages as a member uses them: create a draft (form errors keep what was typed), the
preview, send now, pause/resume/cancel, dead letters re-queued, approval, scoping, and a constant
query count on the list and the campaign page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.campaigns import services
from apps.campaigns.models import DELIVERY_SOURCE, Campaign, CampaignSettings, CampaignStatus
from apps.delivery.models import Delivery
from tests.campaigns.conftest import make_campaign
from tests.messaging.factories import FanFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def form_data(world, **overrides):
    data = {
        "creator": world.creator.pk,
        "name": "Weekend PPV",
        "segment": "",
        "fan_usernames": "",
        "text": "Hi {fan.first_name|babe} <b>new</b> set 🔥",
        "ppv_price": "",
        "media": "",
        "send_at": "",
        "exclude_messaged_within_hours": "",
        "exclude_no_spend_days": "",
    }
    data.update(overrides)
    return data


def test_empty_list_invites_to_create_one(world, client_for):
    page = client_for(world.owner).get(reverse("campaigns:list"))
    assert page.status_code == 200
    assert "No campaigns yet." in page.content.decode()
    assert reverse("campaigns:create") in page.content.decode()


def test_create_a_draft_for_a_segment_and_see_the_preview(world, client_for):
    FanFactory(creator=world.creator, display_name="Marco Polo", username="marco")
    segment = SegmentFactory(agency=world.agency, creator=world.creator, name="Everyone", filters={})
    client = client_for(world.owner)
    response = client.post(reverse("campaigns:create"), form_data(world, segment=segment.pk))
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("campaigns:detail", args=[campaign.pk])
    page = client.get(response["Location"]).content.decode()
    assert "Hi Marco &lt;b&gt;new&lt;/b&gt; set" in page  # rendered per fan, escaped
    assert "Send now to 1 fan" in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"segment": "", "fan_usernames": ""}, "Choose the audience"),
        ({"fan_usernames": "nobody_here"}, "No fan of this creator is called nobody_here"),
        ({"fan_usernames": "marco", "ppv_price": "0.10", "media": "vault-1"}, "PPV prices go from"),
        ({"fan_usernames": "marco", "ppv_price": "20", "media": ""}, "needs media"),
        ({"fan_usernames": "marco", "send_at": "2020-01-01T10:00"}, "has passed"),
        ({"fan_usernames": "marco", "text": "x" * 1001}, "allows 1000"),
    ],
)
def test_bad_input_is_a_form_error_that_keeps_what_was_typed(world, client_for, overrides, message):
    FanFactory(creator=world.creator, username="marco")
    response = client_for(world.owner).post(reverse("campaigns:create"), form_data(world, **overrides))
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert "Weekend PPV" in page  # the name typed is still there
    assert not Campaign.objects.exists()


def test_send_now_then_pause_resume_and_cancel_from_the_page(
    world, client_for, fans, django_capture_on_commit_callbacks
):
    client = client_for(world.owner)
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        response = client.post(reverse("campaigns:schedule", args=[campaign.pk]), follow=True)
    assert "Sending now." in response.content.decode()
    services.campaign_start(campaign_id=campaign.pk)
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "Pause" in page and f"/ws/campaigns/{campaign.pk}/" in page
    client.post(reverse("campaigns:pause", args=[campaign.pk]))
    assert Campaign.objects.get().status == CampaignStatus.PAUSED
    with django_capture_on_commit_callbacks():
        client.post(reverse("campaigns:resume", args=[campaign.pk]))
    assert Campaign.objects.get().status == CampaignStatus.SENDING
    response = client.post(reverse("campaigns:cancel", args=[campaign.pk]), follow=True)
    assert "Cancelled: nothing more will be sent." in response.content.decode()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"cancelled"}
    response = client.post(reverse("campaigns:resume", args=[campaign.pk]), follow=True)
    assert "it cannot be resumed now" in response.content.decode()


def test_a_dead_letter_is_re_queued_from_the_campaign_page(world, client_for, fans, django_capture_on_commit_callbacks):
    campaign = make_campaign(world, fan_ids=[fans[0].pk])
    with django_capture_on_commit_callbacks():
        services.campaign_schedule(membership=world.owner, campaign=campaign)
        services.campaign_start(campaign_id=campaign.pk)
    delivery = Delivery.objects.get(source=DELIVERY_SOURCE, source_id=campaign.pk)
    Delivery.objects.filter(pk=delivery.pk).update(status="dead", last_error="Fan blocked the creator.")
    client = client_for(world.owner)
    page = client.get(reverse("campaigns:detail", args=[campaign.pk]) + "?deliveries=dead").content.decode()
    assert "Fan blocked the creator." in page and "Re-queue" in page
    with django_capture_on_commit_callbacks():
        client.post(reverse("campaigns:requeue", args=[campaign.pk, delivery.pk]))
    delivery.refresh_from_db()
    assert delivery.status == "pending"


def test_a_cancelled_campaign_offers_no_re_queue_and_refuses_one(
    world, client_for, fans, django_capture_on_commit_callbacks
):
    campaign = make_campaign(world, fan_ids=[fans[0].pk])
    with django_capture_on_commit_callbacks():
        services.campaign_schedule(membership=world.owner, campaign=campaign)
        services.campaign_start(campaign_id=campaign.pk)
    delivery = Delivery.objects.get(source=DELIVERY_SOURCE, source_id=campaign.pk)
    Delivery.objects.filter(pk=delivery.pk).update(status="dead", last_error="Fan blocked the creator.")
    services.campaign_cancel(membership=world.owner, campaign=campaign)
    client = client_for(world.owner)
    page = client.get(reverse("campaigns:detail", args=[campaign.pk]) + "?deliveries=dead").content.decode()
    assert "Fan blocked the creator." in page and "Re-queue" not in page
    response = client.post(reverse("campaigns:requeue", args=[campaign.pk, delivery.pk]), follow=True)
    assert "This campaign is cancelled: nothing more is sent" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == "dead"


def test_a_delivery_of_another_campaign_is_not_re_queued_through_this_one(world, client_for, fans):
    campaign = make_campaign(world, fan_ids=[fans[0].pk])
    stranger = Delivery.objects.create(
        agency=world.agency, creator=world.creator, platform="onlyfans", recipient_id="x", text="t",
        idempotency_key="other-1", status="dead",
    )  # fmt: skip
    response = client_for(world.owner).post(reverse("campaigns:requeue", args=[campaign.pk, stranger.pk]), follow=True)
    assert "That delivery is not this campaign" in response.content.decode()
    stranger.refresh_from_db()
    assert stranger.status == "dead"


def test_a_chatters_large_campaign_is_sent_for_approval_and_a_manager_approves(world, client_for, fans):
    CampaignSettings.objects.create(agency=world.agency, approval_above=2)
    campaign = make_campaign(world, world.chatter, fan_ids=[fan.pk for fan in fans])
    response = client_for(world.chatter).post(reverse("campaigns:schedule", args=[campaign.pk]), follow=True)
    assert "Sent for approval" in response.content.decode()
    assert "Waiting for an owner" in response.content.decode()
    manager_page = client_for(world.manager).get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "Approve" in manager_page
    client_for(world.manager).post(reverse("campaigns:approve", args=[campaign.pk]))
    assert Campaign.objects.get().status == CampaignStatus.SCHEDULED


def test_only_an_owner_sets_the_approval_size(world, client_for):
    response = client_for(world.manager).post(reverse("campaigns:settings"), {"approval_above": "10"})
    assert response.status_code == 400 and "Only an owner" in response.content.decode()
    response = client_for(world.owner).post(reverse("campaigns:settings"), {"approval_above": "10"})
    assert response.status_code == 302
    assert CampaignSettings.objects.get().approval_above == 10


def test_another_agencys_campaign_is_404_and_a_chatter_sees_only_assigned_creators(
    world, other_world, client_for, fans
):
    mine = make_campaign(world, fan_ids=[fans[0].pk])
    other_fan = FanFactory(creator=world.other_creator)
    unassigned = make_campaign(world, creator=world.other_creator, fan_ids=[other_fan.pk], name="Nova drop")
    outsider = client_for(other_world.owner)
    for name in ("detail", "edit", "pause", "cancel"):
        method = outsider.get if name in ("detail", "edit") else outsider.post
        assert method(reverse(f"campaigns:{name}", args=[mine.pk])).status_code == 404
    chatter = client_for(world.chatter)
    listing = chatter.get(reverse("campaigns:list")).content.decode()
    assert "Friday drop" in listing and "Nova drop" not in listing
    assert chatter.get(reverse("campaigns:detail", args=[unassigned.pk])).status_code == 404


def test_a_viewer_reads_but_cannot_create_or_act(world, client_for, fans):
    campaign = make_campaign(world, fan_ids=[fans[0].pk])
    viewer = client_for(world.viewer)
    assert viewer.get(reverse("campaigns:detail", args=[campaign.pk])).status_code == 200
    assert viewer.get(reverse("campaigns:create")).status_code == 403
    assert viewer.post(reverse("campaigns:schedule", args=[campaign.pk])).status_code == 403
    assert Campaign.objects.get().status == CampaignStatus.DRAFT


def test_edit_keeps_the_send_time_in_the_creators_timezone(world, client_for, fans):
    world.creator.timezone = "Europe/Paris"
    world.creator.save()
    when = (timezone.now() + timedelta(days=3)).astimezone(timezone.get_fixed_timezone(0)).replace(tzinfo=None)
    local = when.replace(hour=21, minute=30, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")
    client = client_for(world.owner)
    client.post(reverse("campaigns:create"), form_data(world, fan_usernames=fans[0].username, send_at=local))
    campaign = Campaign.objects.get()
    assert campaign.send_at.astimezone(services.creator_zone(world.creator)).strftime("%Y-%m-%dT%H:%M") == local
    assert f'value="{local}"' in client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()


def test_fans_who_share_a_username_are_never_dropped_silently(world, client_for):
    twins = [FanFactory(creator=world.creator, username="alex") for _ in range(2)]
    bea = FanFactory(creator=world.creator, username="bea")
    client = client_for(world.owner)
    response = client.post(reverse("campaigns:create"), form_data(world, fan_usernames="alex, bea"))
    assert response.status_code == 400
    assert "Several fans of this creator are called alex" in response.content.decode()
    assert not Campaign.objects.exists()

    chosen = sorted([*(fan.pk for fan in twins), bea.pk])
    campaign = make_campaign(world, fan_ids=chosen)
    shown = client.get(reverse("campaigns:edit", args=[campaign.pk])).context["form"].initial["fan_usernames"]
    response = client.post(
        reverse("campaigns:edit", args=[campaign.pk]), form_data(world, fan_usernames=shown, name="Renamed")
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.fan_ids) == ("Renamed", chosen)


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_list_and_campaign_pages_keep_a_constant_query_count(
    world, client_for, fans, django_capture_on_commit_callbacks
):
    client = client_for(world.owner)
    first = make_campaign(world, fan_ids=[fan.pk for fan in fans], name="Campaign 0")
    with django_capture_on_commit_callbacks():
        services.campaign_schedule(membership=world.owner, campaign=first)
        services.campaign_start(campaign_id=first.pk)
    listing, detail = reverse("campaigns:list"), reverse("campaigns:detail", args=[first.pk])
    client.get(listing)  # warm the session
    before = (_queries(client, listing), _queries(client, detail))
    for index in range(1, 8):
        make_campaign(world, fan_ids=[fan.pk for fan in fans], name=f"Campaign {index}")
    Delivery.objects.filter(source=DELIVERY_SOURCE, source_id=first.pk).update(status="sent", sent_at=timezone.now())
    after = (_queries(client, listing), _queries(client, detail))
    assert before == after
    assert after[0] <= 13 and after[1] <= 16, after
