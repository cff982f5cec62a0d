"""The campaigns admin: lists with search and filters whose query count does not grow with their
rows, a read-only change page with the delivery numbers of ``campaign_stats``, and no way to
write around the services (no add, change, delete or cancel)."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.campaigns import services
from apps.campaigns.models import Campaign, CampaignSettings, CampaignStatus
from apps.delivery.services import delivery_pump
from tests.accounts.factories import UserFactory
from tests.campaigns.conftest import make_campaign
from tests.messaging.factories import FanFactory

CHANGELIST = "admin:campaigns_campaign_changelist"


@pytest.fixture
def staff(db) -> Client:
    client = Client()
    client.force_login(
        UserFactory(is_staff=True, is_superuser=True), backend="django.contrib.auth.backends.ModelBackend"
    )
    return client


def _campaigns(world, fans, n: int) -> list[Campaign]:
    return [
        make_campaign(
            world,
            name=f"Drop {index}",
            creator=world.creator if index % 2 else world.other_creator,
            fan_ids=[fan.pk for fan in fans[index % 2]],
            membership=world.owner if index % 3 else world.manager,
        )
        for index in range(n)
    ]


@pytest.fixture
def audiences(world):
    """Two fans of each creator: (other creator's, first creator's), as ``_campaigns`` alternates."""
    return [[FanFactory(creator=creator) for _ in range(2)] for creator in (world.other_creator, world.creator)]


def test_both_models_are_registered():
    assert Campaign in admin.site._registry and CampaignSettings in admin.site._registry


def test_the_list_shows_its_columns_searches_and_filters(staff, world, audiences):
    _campaigns(world, audiences, 2)
    page = staff.get(reverse(CHANGELIST)).content.decode()
    assert "Drop 0" in page and "Drop 1" in page
    assert world.creator.display_name in page and world.agency.name in page and world.manager.user.email in page
    found = staff.get(reverse(CHANGELIST), {"q": "Drop 1"}).content.decode()
    assert "Drop 1" in found and "Drop 0" not in found
    filtered = staff.get(reverse(CHANGELIST), {"status__exact": "draft", "agency__id__exact": world.agency.pk})
    assert filtered.status_code == 200 and "Drop 0" in filtered.content.decode()
    assert "Drop 0" not in staff.get(reverse(CHANGELIST), {"status__exact": "sending"}).content.decode()


def test_the_list_does_not_grow_with_its_rows(staff, world, audiences):
    CampaignSettings.objects.create(agency=world.agency, approval_above=100)
    _campaigns(world, audiences, 1)
    counts = {}
    for name in ("campaign", "campaignsettings"):
        with CaptureQueriesContext(connection) as queries:
            assert staff.get(reverse(f"admin:campaigns_{name}_changelist")).status_code == 200
        counts[name] = len(queries)
    _campaigns(world, audiences, 8)
    other = UserFactory()
    Campaign.objects.filter(name="Drop 3").update(created_by=other)
    for name in ("campaign", "campaignsettings"):
        with CaptureQueriesContext(connection) as queries:
            assert staff.get(reverse(f"admin:campaigns_{name}_changelist")).status_code == 200
        assert len(queries) == counts[name], name


def test_the_change_page_shows_the_delivery_numbers_read_only(
    staff, world, audiences, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    fans = audiences[1] + [FanFactory(creator=world.creator, platform_fan_id="fail-permanent-1")]
    campaign = make_campaign(world, name="Thank you", fan_ids=[fan.pk for fan in fans])
    with django_capture_on_commit_callbacks():
        services.campaign_schedule(membership=world.owner, campaign=campaign)
    assert services.campaign_start(campaign_id=campaign.pk) == CampaignStatus.SENDING
    delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    url = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    with django_assert_max_num_queries(12):  # the row with its relations, two counts for the numbers, the session…
        response = staff.get(url)
    page = response.content.decode()
    assert response.status_code == 200 and "Thank you" in page
    numbers = dict(re.findall(r'<label>([^<]+):</label>\s*<div class="readonly">([^<]*)</div>', page))
    assert numbers["Sent"] == "2" and numbers["Dead letters"] == "1"
    assert numbers["Queued (pending, held or being sent)"] == "0" and numbers["Targeted"] == "3"
    assert numbers["Done (sent, dead or cancelled)"] == "3 of 3 (100%)"
    assert 'name="status"' not in page and 'name="name"' not in page  # nothing to edit


def test_nothing_is_written_around_the_services(staff, world, audiences):
    campaign = _campaigns(world, audiences, 1)[0]
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    staff.post(change, {"name": "Renamed", "status": "completed"})
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status) == ("Drop 0", CampaignStatus.DRAFT)
    delete = reverse("admin:campaigns_campaign_delete", args=[campaign.pk])
    assert staff.post(delete, {"post": "yes"}).status_code == 403
    assert staff.get(reverse("admin:campaigns_campaign_add")).status_code == 403
    assert Campaign.objects.filter(pk=campaign.pk).exists()
    # No bulk action: the only built-in one (delete) is refused, and no cancel bypasses campaign_cancel.
    page = staff.get(reverse(CHANGELIST)).content.decode()
    assert 'name="action"' not in page
    settings_row = CampaignSettings.objects.create(agency=world.agency, approval_above=50)
    staff.post(reverse("admin:campaigns_campaignsettings_change", args=[settings_row.pk]), {"approval_above": "1"})
    settings_row.refresh_from_db()
    assert settings_row.approval_above == 50


def test_members_cannot_open_the_admin(world, client_for):
    assert client_for(world.owner).get(reverse(CHANGELIST)).status_code == 302


# --- Staff's re-queue in the delivery admin follows the campaign's state ----------------------


def test_staff_re_queue_refuses_a_cancelled_campaigns_dead_letter_and_holds_a_paused_ones(
    staff, world, audiences, django_capture_on_commit_callbacks
):
    """The delivery admin's action gives the campaign page's answer: a cancelled campaign sends
    nothing more, a paused one's letter waits for the resume, a completed one sends again."""
    from apps.delivery.models import Delivery
    from apps.delivery.tasks import deliver

    fans = audiences[1] + [FanFactory(creator=world.creator)]
    cancelled, paused, completed = (make_campaign(world, fan_ids=[fan.pk]) for fan in fans)
    for campaign in (cancelled, paused, completed):
        with django_capture_on_commit_callbacks():
            services.campaign_schedule(membership=world.owner, campaign=campaign)
            services.campaign_start(campaign_id=campaign.pk)
    letters = {
        campaign.pk: Delivery.objects.get(source="campaigns.campaign", source_id=campaign.pk)
        for campaign in (cancelled, paused, completed)
    }
    Delivery.objects.filter(pk__in=[letter.pk for letter in letters.values()]).update(
        status="dead", last_error="The platform was down."
    )
    services.campaign_cancel(membership=world.owner, campaign=cancelled)
    services.campaign_pause(membership=world.owner, campaign=paused)
    assert services.campaigns_tick()["completed"] == 1

    response = staff.post(
        reverse("admin:delivery_delivery_changelist"),
        {"action": "requeue_dead", "_selected_action": [letter.pk for letter in letters.values()]},
        follow=True,
    )
    assert (
        "Re-queued 1 dead delivery. 1 re-queued but held: their campaign is paused (sent when it resumes). "
        "1 refused, left dead: their campaign is cancelled."
    ) in response.content.decode()
    status = dict(
        Delivery.objects.filter(pk__in=[letter.pk for letter in letters.values()]).values_list("source_id", "status")
    )
    assert status == {cancelled.pk: "dead", paused.pk: "held", completed.pk: "pending"}
    assert deliver(letters[cancelled.pk].pk) == "skipped" and deliver(letters[paused.pk].pk) == "skipped"
    completed.refresh_from_db()
    assert (completed.status, completed.finished_at) == (CampaignStatus.SENDING, None)
    assert deliver(letters[completed.pk].pk) == "sent"
    with django_capture_on_commit_callbacks():
        services.campaign_resume(membership=world.owner, campaign=paused)
    assert deliver(letters[paused.pk].pk) == "sent"
