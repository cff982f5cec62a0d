"""API for integrations at /api/v1/integrations/: scheduled posts (publishing to TikTok,
Instagram and Reddit; drafts awaiting approval) and CRM connections (outbound webhooks:
connections, a test event, the delivery log and replay). Thin: the rules live in
apps/integrations/publishing.py and crm.py. A CRM connection's signing secret is answered once,
by the create that made it; nothing else returns it."""

# No `from __future__ import annotations`: @paginate resolves parameter annotations in ninja's
# module, where the names of this one are unknown.

from datetime import datetime
from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StringConstraints

from apps.accounts.api import api_membership
from apps.accounts.models import Membership
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import creator_get_for_member
from apps.core.errors import ConflictError, fields_renamed
from apps.core.openapi import ErrorOut, Id
from apps.core.timezones import moment_check
from apps.integrations import crm, publishing
from apps.integrations.models import (
    PUBLISH_PLATFORMS,
    CRMConnection,
    CRMDeliveryStatus,
    CRMEventKind,
    PostMediaType,
    PostStatus,
)

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


class DraftApproveIn(Schema):
    """What a draft lacks to go out; a field left out keeps the draft's own (its time must still
    be in the future by then)."""

    scheduled_at: datetime | None = Field(None, description="When to publish, with its time zone; in the future.")
    caption: str | None = Field(None, max_length=40000)
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
    """Posts scheduled at or after ``start`` and before ``end``, oldest first. A ``creator_id``
    the caller cannot see is a 404, as on /fans."""
    moment_check(start, field="start")
    moment_check(end, field="end")
    membership = api_membership(request)
    if creator_id is not None:
        creator_get_for_member(membership=membership, creator_id=creator_id)
    return publishing.post_list(
        membership=membership, creator_id=creator_id, platform=platform, status=status, start=start, end=end
    )


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


@router.post("/posts/{scheduled_post_id}/approve", response={200: ScheduledPostOut, 409: ErrorOut})
def post_approve(request: HttpRequest, scheduled_post_id: Id, payload: DraftApproveIn):
    """Approve a draft (``status: draft``, proposed by the weekly content plan): it is scheduled
    on the creator's connection under the same rules as a new post. 409 when it is no longer a draft."""
    membership = api_membership(request)
    post = publishing.post_get_for_member(membership=membership, post_id=scheduled_post_id)
    require(membership, Perm.EDIT, post.creator)
    if post.status != PostStatus.DRAFT:
        raise ConflictError(f"Only a draft can be approved; this one is {post.get_status_display().lower()}.")
    return publishing.post_schedule(
        membership=membership, creator=post.creator, platform=post.platform,
        scheduled_at=payload.scheduled_at or post.scheduled_at,
        caption=post.caption if payload.caption is None else payload.caption, title=payload.title or post.title,
        subreddit=payload.subreddit or post.subreddit, media_type=payload.media_type, media_urls=payload.media_urls,
        draft=post,
    )  # fmt: skip


@router.post("/posts/{scheduled_post_id}/retry", response={200: ScheduledPostOut, 409: ErrorOut})
def post_retry(request: HttpRequest, scheduled_post_id: Id):
    membership = api_membership(request)
    post = publishing.post_get_for_member(membership=membership, post_id=scheduled_post_id)
    return publishing.post_retry(membership=membership, post=post)


# --- CRM connections (outbound webhooks) ---------------------------------------------------------

CRMEventKindName = Literal[tuple(CRMEventKind.values)]
CRMDeliveryStatusName = Literal[tuple(CRMDeliveryStatus.values)]
CRMName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
TargetURL = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
FieldMapping = dict[Annotated[str, StringConstraints(max_length=64)], Annotated[str, StringConstraints(max_length=64)]]


class CRMConnectionIn(Schema):
    name: CRMName
    target_url: TargetURL = Field(description="https:// address the signed events are POSTed to.")
    event_kinds: list[CRMEventKindName] = Field(default_factory=list, max_length=len(CRMEventKind.values))
    field_mapping: FieldMapping = Field(
        default_factory=dict, max_length=len(crm.MAPPABLE_FIELDS),
        description="Our fan field → the CRM's field name; empty: every field under our names.",
    )  # fmt: skip
    active: bool = True


class CRMConnectionPatchIn(Schema):
    name: CRMName | None = None
    target_url: TargetURL | None = None
    event_kinds: list[CRMEventKindName] | None = Field(None, max_length=len(CRMEventKind.values))
    field_mapping: FieldMapping | None = Field(None, max_length=len(crm.MAPPABLE_FIELDS))
    active: bool | None = None


class CRMConnectionOut(Schema):
    id: int
    name: str
    target_url: str
    event_kinds: list[str]
    field_mapping: dict[str, str]
    active: bool
    inbound_url: str = Field(description="Where the CRM sends its signed events to us.")
    dead_deliveries: int = Field(description="Deliveries given up on, waiting for a replay.")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_inbound_url(obj: CRMConnection) -> str:
        return crm.inbound_url(obj)

    @staticmethod
    def resolve_dead_deliveries(obj: CRMConnection) -> int:
        dead = getattr(obj, "dead_count", None)
        return dead if dead is not None else obj.deliveries.filter(status=CRMDeliveryStatus.DEAD).count()


class CRMConnectionCreatedOut(CRMConnectionOut):
    signing_secret: str = Field(
        description="Signs every event both ways (Huntaze-Signature). Shown this once: keep it now."
    )


class CRMTestOut(Schema):
    event_id: str
    delivered: bool = Field(description="The CRM answered 2xx.")
    status_code: int | None
    error: str = Field(description="Why it was not delivered: HTTP status, timeout, or our refusal of the address.")
    duration_ms: float


class CRMDeliveryOut(Schema):
    id: int
    crm_id: int
    event_id: int
    kind: str
    status: str
    attempts: int
    response_code: int | None
    last_error: str
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


def _crm_for(request: HttpRequest, crm_id: int) -> tuple[Membership, CRMConnection]:
    membership = api_membership(request)
    return membership, crm.crm_get_for_member(membership=membership, crm_id=crm_id)


@router.get("/crm", response=list[CRMConnectionOut], tags=["crm"])
@paginate(page_size=25)
def crm_list(request: HttpRequest):
    """The agency's CRM connections, by name."""
    return crm.crm_list(membership=api_membership(request))


@router.post("/crm", response={201: CRMConnectionCreatedOut}, tags=["crm"])
def crm_create(request: HttpRequest, payload: CRMConnectionIn):
    """Connect a CRM; answers the connection with its signing secret, which no other call shows."""
    connection, secret = crm.crm_create(membership=api_membership(request), **payload.model_dump())
    connection.signing_secret = secret
    return Status(201, connection)


@router.get("/crm/{crm_id}", response=CRMConnectionOut, tags=["crm"])
def crm_detail(request: HttpRequest, crm_id: Id):
    return _crm_for(request, crm_id)[1]


@router.patch("/crm/{crm_id}", response=CRMConnectionOut, tags=["crm"])
def crm_update(request: HttpRequest, crm_id: Id, payload: CRMConnectionPatchIn):
    """Change any of name, target_url, event_kinds, field_mapping, active; omitted fields keep their value."""
    membership, connection = _crm_for(request, crm_id)
    given = {name: value for name, value in payload.model_dump().items() if value is not None}
    values = {
        "name": connection.name, "target_url": connection.target_url, "event_kinds": connection.event_kinds,
        "field_mapping": connection.field_mapping, "active": connection.active, **given,
    }  # fmt: skip
    return crm.crm_update(membership=membership, crm=connection, **values)


@router.delete("/crm/{crm_id}", response={204: None}, tags=["crm"])
def crm_delete(request: HttpRequest, crm_id: Id):
    """Delete the connection with its delivery log; events not yet sent are not sent."""
    membership, connection = _crm_for(request, crm_id)
    crm.crm_delete(membership=membership, crm=connection)
    return Status(204, None)


@router.post("/crm/{crm_id}/test", response=CRMTestOut, tags=["crm"])
def crm_test(request: HttpRequest, crm_id: Id):
    """Send a signed ``test`` event now and answer what the CRM said (not logged, not retried)."""
    membership, connection = _crm_for(request, crm_id)
    return crm.crm_test_send(membership=membership, crm=connection)


@router.get("/crm/{crm_id}/deliveries", response=list[CRMDeliveryOut], tags=["crm"])
@paginate(page_size=25)
def crm_deliveries(request: HttpRequest, crm_id: Id, status: CRMDeliveryStatusName | None = None):
    """The delivery log, newest first; ``status=dead`` lists what waits for a replay."""
    return crm.crm_deliveries(crm=_crm_for(request, crm_id)[1], status=status)


@router.post("/crm/deliveries/{crm_delivery_id}/replay", response={200: CRMDeliveryOut, 409: ErrorOut}, tags=["crm"])
def crm_replay(request: HttpRequest, crm_delivery_id: Id):
    """Send a delivery again (same event id, a fresh series of attempts); 409 while it is being sent."""
    membership = api_membership(request)
    delivery = crm.crm_delivery_get_for_member(membership=membership, delivery_id=crm_delivery_id)
    return crm.crm_delivery_replay(membership=membership, delivery=delivery)
