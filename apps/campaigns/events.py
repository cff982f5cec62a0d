"""``campaign.progress`` on the event bus: a campaign's deliveries moved, at most about once per
PROGRESS_EVENT_SECONDS per campaign. The payload is ids and the campaign's status only; a
consumer reads the numbers through its own scoped read (the campaign page's panel, or
``GET /api/v1/campaigns/{id}``, which refuses a chatter the creators they are not assigned), as
for ``workflow.run_changed``: the agency's SSE stream reaches every member of the agency.

The delivery pipeline (a lower layer) announces every status change with the
``delivery_status_changed`` signal, in the worker, after commit; a campaign of 10,000 fans makes
tens of thousands. ``delivery_moved`` (connected in ``CampaignsConfig.ready``) turns them into one
``publish_campaign_progress`` task per window: the first change of a window takes the window
(a compare-and-swap on an absent key in ``apps.core.shared``, which every process and worker
shares in every mode) and schedules the task PROGRESS_EVENT_SECONDS later. Until that time this
process remembers it scheduled one and makes no further call; after it, or in another process,
each change tries to take the window again, which fails while the task has not run. The task
frees the window first, then reads the campaign and publishes, so a change that commits after it
freed the window takes a new one and brings its own event, and one that committed before is
seen by its read: the last event always follows the last change. A lost task (a worker killed)
leaves the window taken until WINDOW_TTL_SECONDS, then the next change schedules again.
``campaign.completed`` (services.py) still marks the end.

Subscribers: the agency's SSE stream and in-process subscribers (docs/events.md), and the
campaign's Channels group (``campaign_group``), which the progress panel's websocket joins
(consumers.py) to redraw at once instead of waiting for its next read.
"""

from __future__ import annotations

import time

from django.db import transaction

from apps.campaigns.models import DELIVERY_SOURCE
from apps.core.events import publish
from apps.core.shared import shared_state

PROGRESS = "campaign.progress"
PROGRESS_EVENT_SECONDS = 1.0
WINDOW_TTL_SECONDS = 30.0  # a window whose task was lost ends after this long
_scheduled: dict[int, float] = {}  # campaign id → monotonic time this process's task is due


def campaign_group(campaign_id: int) -> str:
    """The Channels group of one campaign's live progress panel."""
    return f"campaigns.campaign.{campaign_id}"


def _window_key(campaign_id: int) -> str:
    return f"campaigns:progress-window:{campaign_id}"


def delivery_moved(sender, *, source, source_id, status, **kwargs) -> None:
    """``delivery_status_changed`` receiver: a campaign delivery moved; its progress event is due."""
    if source != DELIVERY_SOURCE or source_id is None:
        return
    now = time.monotonic()
    if now < _scheduled.get(source_id, float("-inf")):
        return  # this process's task, not run yet, will read this change
    if not shared_state().swap_record_sync(_window_key(source_id), None, {"at": time.time()}, ttl=WINDOW_TTL_SECONDS):
        return  # another process's task, not run yet, will read it
    _scheduled[source_id] = now + PROGRESS_EVENT_SECONDS
    if len(_scheduled) > 10_000:  # a long-lived worker forgets windows long past
        for campaign_id, due in list(_scheduled.items()):
            if due < now:
                del _scheduled[campaign_id]
    from apps.campaigns.tasks import publish_campaign_progress

    publish_campaign_progress.apply_async((source_id,), countdown=PROGRESS_EVENT_SECONDS)


def progress_publish(*, campaign_id: int) -> bool:
    """Free the campaign's window, then publish ``campaign.progress``; False when the campaign is gone."""
    from apps.campaigns.models import Campaign

    shared_state().delete_sync(_window_key(campaign_id))
    campaign = Campaign.objects.filter(pk=campaign_id).values("agency_id", "creator_id", "status").first()
    if campaign is None:
        return False
    with transaction.atomic():
        publish(
            PROGRESS,
            agency_id=campaign["agency_id"],
            payload={"campaign_id": campaign_id, "creator_id": campaign["creator_id"], "status": campaign["status"]},
            groups=[campaign_group(campaign_id)],
        )
    return True
