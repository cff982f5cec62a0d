"""Demo data for integrations, every piece SIMULATED and labelled so (the "Simulated (demo)" badge
on the connection pages; "Simulated demo" in each post's text and platform answer): no real
account, no API key or token, and the webhook secret is random.

- The first demo creator's OnlyFans account, connected through a simulated third-party API
  connection.
- Their Instagram and Reddit accounts, connected for publishing, and a few posts on the
  publishing calendar around today: published (two days ago, yesterday), failed (this morning,
  with the kind of answer Instagram gives) and scheduled (tomorrow, in three days, next week). A
  simulated connection sends nothing: when a scheduled demo post's time comes, or a member
  retries the failed one, the worker records it as published with a simulated answer
  (apps/integrations/publishing.py).

TikTok stays unconnected, so the pages show both states.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

from django.utils import timezone

from apps.core.registry import DemoContext
from apps.integrations.models import (
    Connection,
    ConnectionEvent,
    ConnectionEventKind,
    ConnectionStatus,
    Platform,
    PostMediaType,
    PostStatus,
    ScheduledPost,
)
from apps.integrations.publishing import PUBLISH_SCOPES

ORDER = 85  # after messaging (30): the simulated fans it stands for exist by then
LABEL = "Simulated demo"
MEDIA = "https://simulated.invalid/media"


def _answer(platform: str, **fields) -> str:
    return json.dumps({"simulated": True, "note": f"{LABEL}: nothing was sent to {platform}.", **fields})


def _publishing_connection(creator, platform: str) -> Connection:
    connection, _ = Connection.objects.update_or_create(
        creator=creator,
        platform=platform,
        defaults={
            "agency_id": creator.agency_id, "status": ConnectionStatus.CONNECTED, "is_simulated": True,
            "scopes": [PUBLISH_SCOPES[platform]], "external_account_id": f"demo-{platform}",
        },
    )  # fmt: skip
    ConnectionEvent.objects.create(
        agency_id=creator.agency_id, connection=connection, kind=ConnectionEventKind.CONNECTED,
        detail=f"{LABEL} connection (no real {connection.get_platform_display()} account).",
    )  # fmt: skip
    return connection


def _posts(creator, instagram: Connection, reddit: Connection) -> list[ScheduledPost]:
    now = timezone.now().replace(second=0, microsecond=0)
    common = {"agency_id": creator.agency_id, "creator": creator}
    published = {"status": PostStatus.PUBLISHED, "attempts": 1, "next_attempt_at": None}
    scheduled = {"status": PostStatus.SCHEDULED}
    rows = [
        ScheduledPost(
            **common, **published, connection=instagram, platform=Platform.INSTAGRAM, media_type=PostMediaType.PHOTO,
            caption=f"({LABEL}) Golden hour on the balcony ☀️ #weekend", media_urls=[f"{MEDIA}/balcony.jpg"],
            scheduled_at=now - timedelta(days=2, hours=3), published_at=now - timedelta(days=2, hours=3),
            platform_post_id="sim_ig_1790001", last_response=_answer("Instagram", id="sim_ig_1790001"),
        ),
        ScheduledPost(
            **common, **published, connection=reddit, platform=Platform.REDDIT, subreddit="OnlyFansPromotions",
            title=f"({LABEL}) New set tonight, link in bio", caption="Thirty new photos from the beach shoot.",
            scheduled_at=now - timedelta(days=1, hours=5), published_at=now - timedelta(days=1, hours=5),
            platform_post_id="sim_t3_demo01", last_response=_answer("Reddit", name="sim_t3_demo01"),
        ),
        ScheduledPost(
            **common, connection=instagram, platform=Platform.INSTAGRAM, media_type=PostMediaType.VIDEO,
            caption=f"({LABEL}) Behind the scenes 🎬", media_urls=[f"{MEDIA}/bts.mp4"], status=PostStatus.FAILED,
            attempts=1, scheduled_at=now - timedelta(hours=4), next_attempt_at=None,
            last_error=f"({LABEL}) Instagram refused (9004): The media could not be fetched from this URI.",
            last_response=_answer("Instagram", error={"message": "The media could not be fetched from this URI.",
                                                      "type": "OAuthException", "code": 9004}),
        ),
        ScheduledPost(
            **common, **scheduled, connection=reddit, platform=Platform.REDDIT, subreddit="OnlyFansPromotions",
            title=f"({LABEL}) Ask me anything tonight", caption="Drop your questions below, I answer them all.",
            scheduled_at=now + timedelta(days=1, hours=2),
        ),
        ScheduledPost(
            **common, **scheduled, connection=instagram, platform=Platform.INSTAGRAM, media_type=PostMediaType.PHOTO,
            caption=f"({LABEL}) Three looks, which one? 1, 2 or 3", scheduled_at=now + timedelta(days=3),
            media_urls=[f"{MEDIA}/look-{n}.jpg" for n in (1, 2, 3)],
        ),
        ScheduledPost(
            **common, **scheduled, connection=reddit, platform=Platform.REDDIT, subreddit="OnlyFansPromotions",
            title=f"({LABEL}) Weekly drop is live", media_urls=[f"{MEDIA}/weekly.jpg"],
            media_type=PostMediaType.PHOTO, scheduled_at=now + timedelta(days=7),
        ),
    ]  # fmt: skip
    for post in rows:
        if post.status == PostStatus.SCHEDULED:
            post.next_attempt_at = post.scheduled_at
    return ScheduledPost.objects.bulk_create(rows)


def seed(ctx: DemoContext) -> None:
    if not ctx.creators:
        return
    creator = ctx.creators[0]
    connection, _ = Connection.objects.update_or_create(
        creator=creator,
        platform=Platform.ONLYFANS,
        defaults={
            "agency_id": creator.agency_id,
            "status": ConnectionStatus.CONNECTED,
            "is_simulated": True,
            "api_base_url": "https://simulated.invalid/onlyfans-api",
            "api_account_id": "demo-account",
            "webhook_secret": "whsec_" + secrets.token_urlsafe(32),
            "last_sync_at": timezone.now(),
        },
    )
    ConnectionEvent.objects.create(
        agency_id=creator.agency_id, connection=connection, kind=ConnectionEventKind.CONNECTED,
        detail="Simulated demo connection (no real OnlyFans account).",
    )  # fmt: skip
    ctx.log(f"integrations: {creator.display_name} has a simulated OnlyFans API connection")
    instagram = _publishing_connection(creator, Platform.INSTAGRAM)
    reddit = _publishing_connection(creator, Platform.REDDIT)
    posts = _posts(creator, instagram, reddit)
    ctx.log(f"integrations: {len(posts)} simulated posts on the publishing calendar (Instagram, Reddit)")
