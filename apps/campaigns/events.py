"""``campaign.progress`` on the event bus: a campaign's numbers (targeted, queued, retrying, sent,
dead, rejected, cancelled, sent in the last minute, percent, PPV unlocks and revenue) as its
deliveries move, at most about once per PROGRESS_EVENT_SECONDS per campaign.

The delivery pipeline (a lower layer) announces every status change with the
``delivery_status_changed`` signal, in the worker, after commit; a campaign of 10,000 fans makes
tens of thousands. ``delivery_moved`` (connected in ``CampaignsConfig.ready``) turns them into one
``publish_campaign_progress`` task per window: the first change of a window takes the window in
the shared cache (``cache.add``) and schedules the task PROGRESS_EVENT_SECONDS later; changes
inside the window only remember, in this process, that one is already coming (no cache call per
delivery). The task frees the window first, then counts the campaign (``campaign_stats``: the
same numbers as the campaign page) and publishes one event, so a change landing while it counts
takes a new window and its own event: the last event always carries the last numbers. A lost
task (a worker killed) loses one event; the window's key expires after WINDOW_TTL_SECONDS and the
next change schedules again. ``campaign.completed`` (services.py) still marks the end.

Subscribers: the agency's SSE stream and outbound webhooks (docs/events.md), and the campaign's
Channels group (``campaign_group``), which the progress panel's websocket joins
(consumers.py) to redraw at once instead of waiting for its next read.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import transaction

from apps.campaigns.models import DELIVERY_SOURCE
from apps.core.events import publish

PROGRESS = "campaign.progress"
PROGRESS_EVENT_SECONDS = 1.0
WINDOW_TTL_SECONDS = 30  # a window whose task was lost ends after this long
_coming: dict[int, float] = {}  # campaign id → monotonic time this process last scheduled it


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
    if now - _coming.get(source_id, float("-inf")) < PROGRESS_EVENT_SECONDS:
        return  # this process scheduled the event that covers this change
    _coming[source_id] = now
    if len(_coming) > 10_000:  # a long-lived worker forgets campaigns it has not seen lately
        for campaign_id, at in list(_coming.items()):
            if now - at > PROGRESS_EVENT_SECONDS:
                del _coming[campaign_id]
    if cache.add(_window_key(source_id), 1, timeout=WINDOW_TTL_SECONDS):
        from apps.campaigns.tasks import publish_campaign_progress

        publish_campaign_progress.apply_async((source_id,), countdown=PROGRESS_EVENT_SECONDS)


def progress_publish(*, campaign_id: int) -> bool:
    """Free the campaign's window, count it and publish ``campaign.progress``; False when the
    campaign is gone."""
    from apps.campaigns.models import Campaign
    from apps.campaigns.services import campaign_stats

    cache.delete(_window_key(campaign_id))
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return False
    stats = campaign_stats(campaigns=[campaign])[campaign.pk]
    with transaction.atomic():
        publish(
            PROGRESS,
            agency_id=campaign.agency_id,
            payload={"campaign_id": campaign.pk, "creator_id": campaign.creator_id, "status": campaign.status,
                     **stats.as_dict()},
            groups=[campaign_group(campaign.pk)],
        )  # fmt: skip
    return True
