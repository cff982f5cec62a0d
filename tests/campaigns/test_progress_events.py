"""``campaign.progress`` on the event bus (apps/campaigns/events.py): deliveries moving in the
pipeline take one window per campaign, shared by every process (apps.core.shared); the task a
second later frees it and publishes ids and the status only (the numbers are read through scoped
reads), so the next move takes a new window and is announced too."""

from __future__ import annotations

import pytest

from apps.campaigns import events, services, tasks
from apps.core.models import OutboxEvent
from apps.core.shared import shared_state
from apps.delivery.services import delivery_pump
from tests.campaigns.conftest import make_campaign
from tests.messaging.factories import FanFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_window_remembered():
    events._scheduled.clear()  # ids repeat between rolled-back tests; a real worker never sees that
    yield
    events._scheduled.clear()


def _window(campaign_id: int) -> dict:
    return shared_state().get_record_sync(events._window_key(campaign_id))


def _sent_campaign(world, django_capture_on_commit_callbacks, fans=4):
    people = [FanFactory(creator=world.creator) for _ in range(fans)]
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in people])
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    services.campaign_start(campaign_id=campaign.pk)
    with django_capture_on_commit_callbacks(execute=True):  # the pipeline announces after commit
        delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    return campaign


def test_moving_deliveries_take_one_window_and_the_task_publishes_ids_and_status(
    world, django_capture_on_commit_callbacks
):
    campaign = _sent_campaign(world, django_capture_on_commit_callbacks)
    # Eight status changes (sending, then sent, for four fans): the window taken, no event yet.
    assert _window(campaign.pk) and campaign.pk in events._scheduled
    assert not OutboxEvent.objects.filter(kind=events.PROGRESS).exists()

    assert tasks.publish_campaign_progress(campaign.pk) is True  # the worker, a second later
    event = OutboxEvent.objects.get(kind=events.PROGRESS)
    assert event.agency_id == world.agency.pk and event.groups == [events.campaign_group(campaign.pk)]
    # Ids and the status only: every member's SSE stream gets it, and a chatter may not see this creator.
    assert event.payload == {"campaign_id": campaign.pk, "creator_id": world.creator.pk, "status": "sending"}
    assert _window(campaign.pk) == {}  # freed: the next move takes a new window


def test_only_campaign_deliveries_count_and_a_move_after_the_task_is_announced_again(
    world, django_capture_on_commit_callbacks
):
    campaign = _sent_campaign(world, django_capture_on_commit_callbacks, fans=1)
    tasks.publish_campaign_progress(campaign.pk)
    events._scheduled.clear()  # this process's task ran; a second went by
    events.delivery_moved(None, source="messaging.message", source_id=campaign.pk, status="sent")  # not ours
    assert _window(campaign.pk) == {}
    events.delivery_moved(None, source="campaigns.campaign", source_id=campaign.pk, status="sent")
    assert _window(campaign.pk)
    tasks.publish_campaign_progress(campaign.pk)
    assert OutboxEvent.objects.filter(kind=events.PROGRESS).count() == 2


def test_a_window_another_process_holds_is_left_to_its_task(world, django_capture_on_commit_callbacks):
    campaign = _sent_campaign(world, django_capture_on_commit_callbacks, fans=1)
    tasks.publish_campaign_progress(campaign.pk)
    events._scheduled.clear()
    shared_state().swap_record_sync(events._window_key(campaign.pk), None, {"at": 0}, ttl=30)  # another worker's
    events.delivery_moved(None, source="campaigns.campaign", source_id=campaign.pk, status="sent")
    # Not remembered here: once the other task frees the window, this process's next move takes it.
    assert campaign.pk not in events._scheduled
    shared_state().delete_sync(events._window_key(campaign.pk))
    events.delivery_moved(None, source="campaigns.campaign", source_id=campaign.pk, status="sent")
    assert campaign.pk in events._scheduled and _window(campaign.pk)


def test_a_deleted_campaign_publishes_nothing(world, django_capture_on_commit_callbacks):
    campaign = _sent_campaign(world, django_capture_on_commit_callbacks, fans=1)
    campaign_id = campaign.pk
    campaign.delete()
    assert tasks.publish_campaign_progress(campaign_id) is False
    assert not OutboxEvent.objects.filter(kind=events.PROGRESS).exists()
