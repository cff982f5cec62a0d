"""``campaign.progress`` on the event bus (apps/campaigns/events.py): deliveries moving in the
pipeline schedule one event per window, whatever their number; the event carries the campaign
page's numbers, is private to the agency and frees the window, so the next move is announced too."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from apps.campaigns import events, services, tasks
from apps.core.models import OutboxEvent
from apps.delivery.services import delivery_pump
from tests.campaigns.conftest import make_campaign
from tests.messaging.factories import FanFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_window_remembered():
    events._coming.clear()  # ids repeat between rolled-back tests; a real worker never sees that
    yield
    events._coming.clear()


def _sent_campaign(world, django_capture_on_commit_callbacks, fans=4):
    people = [FanFactory(creator=world.creator) for _ in range(fans)]
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in people])
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    services.campaign_start(campaign_id=campaign.pk)
    with django_capture_on_commit_callbacks(execute=True):  # the pipeline announces after commit
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    return campaign


def test_many_deliveries_moving_take_one_window_and_the_task_publishes_the_numbers(
    world, other_world, django_capture_on_commit_callbacks
):
    campaign = _sent_campaign(world, django_capture_on_commit_callbacks)
    # Eight status changes (sending, then sent, for four fans): one window taken, no event yet.
    assert cache.get(events._window_key(campaign.pk)) == 1
    assert not OutboxEvent.objects.filter(kind=events.PROGRESS).exists()

    assert tasks.publish_campaign_progress(campaign.pk) is True  # the worker, a second later
    event = OutboxEvent.objects.get(kind=events.PROGRESS)
    assert event.agency_id == world.agency.pk and event.groups == [events.campaign_group(campaign.pk)]
    payload = event.payload
    assert (payload["campaign_id"], payload["creator_id"], payload["status"]) == (
        campaign.pk, world.creator.pk, "sending",
    )  # fmt: skip
    assert (payload["targeted"], payload["sent"], payload["queued"], payload["percent"]) == (4, 4, 0, 100)
    assert cache.get(events._window_key(campaign.pk)) is None  # the next move takes a new window


def test_a_move_after_the_window_closed_is_announced_again(world, django_capture_on_commit_callbacks):
    campaign = _sent_campaign(world, django_capture_on_commit_callbacks, fans=1)
    tasks.publish_campaign_progress(campaign.pk)
    events._coming.clear()  # more than a second later in this process
    events.delivery_moved(None, source="campaigns.campaign", source_id=campaign.pk, status="sent")
    assert cache.get(events._window_key(campaign.pk)) == 1
    events.delivery_moved(None, source="messaging.message", source_id=campaign.pk, status="sent")  # not ours
    tasks.publish_campaign_progress(campaign.pk)
    assert OutboxEvent.objects.filter(kind=events.PROGRESS).count() == 2


def test_a_deleted_campaign_publishes_nothing(world, django_capture_on_commit_callbacks):
    campaign = _sent_campaign(world, django_capture_on_commit_callbacks, fans=1)
    campaign_id = campaign.pk
    campaign.delete()
    assert tasks.publish_campaign_progress(campaign_id) is False
    assert not OutboxEvent.objects.filter(kind=events.PROGRESS).exists()
