"""Celery tasks of campaigns; thin, services.py decides.

``start_campaign`` is published when a campaign is scheduled (with a countdown when its send time
is within a minute) and by the tick; it starts the campaign only if it is still scheduled and due,
in one transaction, so running it twice or after a lost worker starts it once.
``campaigns_tick`` is beat's (CELERY_BEAT_SCHEDULE, every 10 s), and so is ``automations_tick``
(every 30 s: new events start runs, due steps are sent, sent ones are recorded; automations.py).
``personalize_campaign`` is published (on commit) when a member asks for a draft's AI
personalisation; it does run ``run`` only if that run is still the campaign's and still queued,
so a second delivery of the message, or a run an edit superseded, does nothing (personalize.py).
``publish_campaign_progress`` publishes one ``campaign.progress`` event for the deliveries that
moved in the last second (events.py).
"""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from apps.campaigns.personalize import RUN_SECONDS


@shared_task(queue="default", acks_late=True, reject_on_worker_lost=True)
def start_campaign(campaign_id: int) -> str:
    from apps.campaigns.services import campaign_start

    return campaign_start(campaign_id=campaign_id)


@shared_task(queue="default")
def campaigns_tick() -> dict[str, int]:
    from apps.campaigns.services import campaigns_tick as tick

    return tick()


@shared_task(queue="default")
def automations_tick() -> dict[str, int]:
    from apps.campaigns.automations import automations_tick as tick

    return tick()


# A run writes for up to personalize.RUN_SECONDS (20 minutes), well past Celery's 300 s default: its
# own limits leave it time to save what it wrote (SQS_MESSAGE_HELD_AT_MOST in settings counts them).
@shared_task(queue="default", acks_late=True, time_limit=RUN_SECONDS + 120, soft_time_limit=RUN_SECONDS + 60)
def personalize_campaign(campaign_id: int, run: int, user_id: int | None = None) -> str:
    from apps.campaigns.personalize import personalize_run

    return personalize_run(campaign_id=campaign_id, run=run, user_id=user_id)


@shared_task(queue="default", ignore_result=True, autoretry_for=(DatabaseError, OSError), retry_backoff=True,
             retry_jitter=True, max_retries=5)  # fmt: skip
def publish_campaign_progress(campaign_id: int) -> bool:
    """Retried when the database or the shared state fails: the window is already freed, so a
    lost run would leave the campaign's last move unannounced."""
    from apps.campaigns.events import progress_publish

    return progress_publish(campaign_id=campaign_id)
