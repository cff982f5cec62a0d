"""API for integrations at /api/v1/integrations/: scheduled posts (publishing to TikTok,
Instagram and Reddit). Thin: the rules live in apps/integrations/publishing.py."""

# No `from __future__ import annotations`: @paginate resolves parameter annotations in ninja's
# module, where the names of this one are unknown.

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from apps.accounts.api import api_membership
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import creator_get_for_member
from apps.core.errors import fields_renamed
from apps.core.openapi import ErrorOut, Id
from apps.integrations import publishing
from apps.integrations.models import PUBLISH_PLATFORMS, PostMediaType, PostStatus

router = Router(tags=["integrations"])

PublishPlatform = Literal[tuple(p.value for p in PUBLISH_PLATFORMS)]
MediaType = Literal[tuple(PostMediaType.values)]
PostStatusName = Literal[tuple(PostStatus.values)]


class ScheduledPostIn(Schema):
    creator_id: Id
    platform: PublishPlatform
    scheduled_at: datetime = Field(description="When to publish, with its time zone; in the future.")
    caption: str = Field("", max_length=40000)
    generation_id: Id | None = Field(None, description="Take the caption from this studio generation.")
    variation: int = Field(0, ge=0, le=20, description="Which of the generation's captions.")
    title: str = Field("", max_length=300, description="Reddit's title; a TikTok photo post's title.")
    subreddit: str = Field("", max_length=23)
    media_type: MediaType = "text"
    media_urls: list[str] = Field(default_factory=list, max_length=35, description="Public https URLs.")


class ScheduledPostOut(Schema):
    id: int
    creator_id: int
    platform: str
    status: str
    scheduled_at: datetime
    title: str
    caption: str
    subreddit: str
    media_type: str
    media_urls: list[str]
    generation_id: int | None
    attempts: int
    platform_post_id: str
    platform_url: str
    last_response: str = Field(description="The platform's last answer, verbatim (untrusted text).")
    last_error: str
    published_at: datetime | None
    created_at: datetime


@router.get("/posts", response=list[ScheduledPostOut])
@paginate(page_size=25)
def post_list(
    request: HttpRequest,
    creator_id: Id | None = None,
    platform: PublishPlatform | None = None,
    status: PostStatusName | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
):
    """Posts scheduled at or after ``start`` and before ``end``, oldest first."""
    publishing.moment_check(start, field="start")
    publishing.moment_check(end, field="end")
    return publishing.post_list(
        membership=api_membership(request), creator_id=creator_id, platform=platform, status=status, start=start,
        end=end,
    )  # fmt: skip


@router.post("/posts", response={201: ScheduledPostOut})
def post_create(request: HttpRequest, payload: ScheduledPostIn):
    membership = api_membership(request)
    creator = creator_get_for_member(membership=membership, creator_id=payload.creator_id, include_archived=False)
    require(membership, Perm.EDIT, creator)
    caption, generation_id = payload.caption, None
    if payload.generation_id is not None:
        caption, generation_id = publishing.caption_from_studio(
            membership=membership, generation_id=payload.generation_id, variation=payload.variation
        )
    with fields_renamed({"creator": "creator_id"}):
        post = publishing.post_schedule(
            membership=membership, creator=creator, platform=payload.platform, scheduled_at=payload.scheduled_at,
            caption=caption, title=payload.title, subreddit=payload.subreddit, media_type=payload.media_type,
            media_urls=payload.media_urls, generation_id=generation_id,
        )  # fmt: skip
    return Status(201, post)


@router.get("/posts/{scheduled_post_id}", response=ScheduledPostOut)
def post_detail(request: HttpRequest, scheduled_post_id: Id):
    return publishing.post_get_for_member(membership=api_membership(request), post_id=scheduled_post_id)


@router.post("/posts/{scheduled_post_id}/cancel", response={200: ScheduledPostOut, 409: ErrorOut})
def post_cancel(request: HttpRequest, scheduled_post_id: Id):
    membership = api_membership(request)
    post = publishing.post_get_for_member(membership=membership, post_id=scheduled_post_id)
    return publishing.post_cancel(membership=membership, post=post)


@router.post("/posts/{scheduled_post_id}/retry", response={200: ScheduledPostOut, 409: ErrorOut})
def post_retry(request: HttpRequest, scheduled_post_id: Id):
    membership = api_membership(request)
    post = publishing.post_get_for_member(membership=membership, post_id=scheduled_post_id)
    return publishing.post_retry(membership=membership, post=post)
