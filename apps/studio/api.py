"""API for the content studio at /api/v1/studio/: generations (JSON or Server-Sent Events),
idea history, and the creator's performance data."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import field_validator

from apps.accounts.api import api_membership
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import creator_get_for_member
from apps.core.jsonvalues import storable_json
from apps.core.openapi import MAX_ID, ErrorOut, Id
from apps.studio import analytics, selectors, services
from apps.studio.analytics import CaptionReport, SeasonalEvent, Trends
from apps.studio.imports import ImportReport, posts_import_csv
from apps.studio.models import Generation, GenerationType
from apps.studio.platforms import PLATFORMS

router = Router(tags=["studio"])


# The choices and ranges services.options_from accepts, stated in the schema so a client (and the
# fuzzer) can tell a valid request from one answering 422. Rules across fields (a platform's own
# hashtag limit and caption lengths, a creator without a persona) remain the service's: 400, or an
# ``error`` event on the stream.
GenerationKind = Literal[tuple(GenerationType.values)]
Platform = Literal[tuple(PLATFORMS)]
Tone = Literal[services.TONES]
MessageType = Literal[services.MESSAGE_TYPES]
Strategy = Literal[services.STRATEGIES]
CaptionLength = Literal["short", "medium", "long"]
MAX_HASHTAGS = max(rules.max_hashtags for rules in PLATFORMS.values())


def _storable_fan(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Free-form, but stored in the generation's options: what PostgreSQL's jsonb refuses (NaN,
    an unpaired surrogate, NUL) is a 422 here, before a stream's headers, not a 500 on save."""
    return None if value is None else storable_json(value, "Fan details")


class GenerateIn(Schema):
    creator_id: Id
    type: GenerationKind
    platform: Platform = "onlyfans"
    tone: Tone = "playful"
    message_type: MessageType = "check_in"
    idea_count: int = Field(5, ge=1, le=services.MAX_IDEAS)
    caption_length: CaptionLength = "medium"
    hashtag_count: int = Field(10, ge=1, le=MAX_HASHTAGS, description="Up to the platform's own limit.")
    variations: int = Field(1, ge=1, le=services.MAX_VARIATIONS)
    media_description: str = Field("", max_length=2000)
    goal: str = Field("", max_length=500)
    strategy: Strategy = "balanced"
    fan: dict[str, Any] | None = Field(
        None, description="The fan the message is for (display_name, notes, total_spent), stored with the generation."
    )

    _fan = field_validator("fan")(_storable_fan)


class GenerationOut(Schema):
    id: int
    creator_id: Id
    type: str
    status: str
    options: dict
    result: dict
    text: str
    error: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    latency_ms: float
    degraded: bool
    saved: bool
    created_at: datetime


def _options(payload: GenerateIn) -> dict[str, Any]:
    return payload.model_dump(exclude={"creator_id"})


@router.post("/generations", response={201: GenerationOut, 502: GenerationOut})
def generation_create(request: HttpRequest, payload: GenerateIn):
    """Generate and wait for the whole result. A provider failure answers 502 with what was kept."""
    membership = api_membership(request)
    creator = creator_get_for_member(membership=membership, creator_id=payload.creator_id, include_archived=False)
    generation = services.generation_run(membership=membership, creator=creator, data=_options(payload))
    return Status(201 if generation.status == Generation.Status.DONE else 502, generation)


def _sse(event: dict) -> str:
    name = event.get("event", "message")
    body = {k: v for k, v in event.items() if k not in {"event", "record"}}
    return f"event: {name}\ndata: {json.dumps(body, ensure_ascii=False, default=str)}\n\n"


# Each event: its name, and its data as one JSON object (OpenAPI 3.1: the schema describes an event).
SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["content", "complete", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {"type": "object"}},
    },
}
SSE_RESPONSE = {
    "200": {
        "description": "Server-Sent Events: `content` (text), then one `complete` (the result) or one `error` "
        "(message, field, the text so far).",
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    }
}


@router.post("/generations/stream", response={200: None}, openapi_extra={"responses": SSE_RESPONSE})
async def generation_stream(request: HttpRequest, payload: GenerateIn):
    """The same generation as Server-Sent Events: ``content`` events with text, then one
    ``complete`` (the result and its metadata) or one ``error`` (message and the text so far).
    A member who may not generate gets 403 before any event, as from the JSON endpoint."""
    membership = await sync_to_async(api_membership)(request)
    creator = await sync_to_async(creator_get_for_member)(
        membership=membership, creator_id=payload.creator_id, include_archived=False
    )
    # Before the headers: inside the stream, the service's own check could only break it.
    await sync_to_async(require)(membership, Perm.SEND_MESSAGES, creator)

    async def events():
        async for event in services.generation_stream(membership=membership, creator=creator, data=_options(payload)):
            yield _sse(event)

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _filter_member(request: HttpRequest, creator_id: int | None):
    """The caller's membership, once a list's ``creator_id`` filter names a creator they may see:
    another agency's creator (or a chatter's unassigned one) is a 404, as /fans and /campaigns
    answer, rather than an empty page that reads as "nothing here"."""
    membership = api_membership(request)
    if creator_id is not None:
        creator_get_for_member(membership=membership, creator_id=creator_id)
    return membership


@router.get("/generations", response=list[GenerationOut])
@paginate(page_size=25)
def generation_list(
    request: HttpRequest, creator_id: int | None = Query(None, ge=1, le=MAX_ID), saved: bool | None = None
):
    return selectors.generation_list(membership=_filter_member(request, creator_id), creator_id=creator_id, saved=saved)


@router.get("/generations/{generation_id}", response=GenerationOut)
def generation_detail(request: HttpRequest, generation_id: Id):
    return selectors.generation_get_for_member(membership=api_membership(request), generation_id=generation_id)


class SaveIn(Schema):
    saved: bool = True


@router.post("/generations/{generation_id}/save", response=GenerationOut)
def generation_save(request: HttpRequest, generation_id: Id, payload: SaveIn):
    membership = api_membership(request)
    generation = selectors.generation_get_for_member(membership=membership, generation_id=generation_id)
    return services.generation_save_to_library(membership=membership, generation=generation, saved=payload.saved)


@router.post("/generations/{generation_id}/variations/{index}/regenerate", response=GenerationOut)
def variation_regenerate(request: HttpRequest, generation_id: Id, index: int):
    """Write one variation (0-based) of a message or caption again, keeping the others."""
    membership = api_membership(request)
    generation = selectors.generation_get_for_member(membership=membership, generation_id=generation_id)
    return services.generation_regenerate_variation(membership=membership, generation=generation, index=index)


class IdeaOut(Schema):
    id: int
    creator_id: Id
    title: str
    description: str
    category: str
    tags: list[str]
    difficulty: str
    estimatedEngagement: int = Field(alias="estimated_engagement")
    trendScore: int = Field(alias="trend_score")
    monetizationPotential: dict[str, int]
    why: dict = Field(alias="score_explanation")
    is_favourite: bool
    used_at: datetime | None
    outcome: str
    created_at: datetime

    @staticmethod
    def resolve_monetizationPotential(obj) -> dict[str, int]:
        return {
            "ppvSuitability": obj.ppv_suitability,
            "subscriptionValue": obj.subscription_value,
            "tipPotential": obj.tip_potential,
        }


@router.get("/ideas", response=list[IdeaOut])
@paginate(page_size=25)
def idea_list(
    request: HttpRequest,
    creator_id: int | None = Query(None, ge=1, le=MAX_ID),
    category: str | None = None,
    favourite: bool | None = None,
    used: bool | None = None,
    q: str = "",
):
    return selectors.idea_list(
        membership=_filter_member(request, creator_id),
        creator_id=creator_id,
        category=category,
        favourite=favourite,
        used=used,
        query=q.strip()[:100],
    )


class FavouriteIn(Schema):
    favourite: bool = True


@router.post("/ideas/{idea_id}/favourite", response=IdeaOut)
def idea_favourite(request: HttpRequest, idea_id: Id, payload: FavouriteIn):
    membership = api_membership(request)
    idea = selectors.idea_get_for_member(membership=membership, idea_id=idea_id)
    return services.idea_set_favourite(membership=membership, idea=idea, favourite=payload.favourite)


class UseIn(Schema):
    outcome: str = Field("", max_length=2000, description="Empty keeps the outcome already recorded.")


@router.post("/ideas/{idea_id}/use", response=IdeaOut)
def idea_use(request: HttpRequest, idea_id: Id, payload: UseIn):
    membership = api_membership(request)
    idea = selectors.idea_get_for_member(membership=membership, idea_id=idea_id)
    return services.idea_mark_used(membership=membership, idea=idea, outcome=payload.outcome)


# --- Performance data: trends, seasonality, caption analysis, posts --------------------------


def _creator(request: HttpRequest, creator_id: Id):
    membership = api_membership(request)
    return membership, creator_get_for_member(membership=membership, creator_id=creator_id, include_archived=False)


@router.get("/creators/{creator_id}/trends", response=Trends)
def trends(request: HttpRequest, creator_id: Id):
    """Rising tags and categories from the agency's own results (cached for an hour)."""
    _, creator = _creator(request, creator_id)
    return analytics.rising_trends(agency_id=creator.agency_id, creator=creator)


class SeasonalityOut(Schema):
    events: list[SeasonalEvent]


@router.get("/creators/{creator_id}/seasonality", response=SeasonalityOut)
def seasonality(request: HttpRequest, creator_id: Id, days: int = Query(60, ge=1, le=366)):
    """Dated events for the creator's locale plus their own weekly and yearly patterns."""
    from django.utils import timezone

    _, creator = _creator(request, creator_id)
    today = timezone.localdate(timezone=analytics.creator_zone(creator))
    return {"events": analytics.seasonality(creator=creator, on=today, horizon_days=days)}


class CaptionIn(Schema):
    caption: str = Field(min_length=1, max_length=5000)
    platform: Platform = "onlyfans"


@router.post("/creators/{creator_id}/caption-analysis", response=CaptionReport)
def caption_analysis(request: HttpRequest, creator_id: Id, payload: CaptionIn):
    """Length, emoji, call to action and question, against this creator's results, with advice."""
    _, creator = _creator(request, creator_id)
    return analytics.caption_analysis(creator=creator, caption=payload.caption, platform=payload.platform)


class PostOut(Schema):
    id: int
    creator_id: Id
    platform: str
    posted_at: datetime
    caption: str
    tags: list[str]
    category: str
    media_type: str
    views: int
    likes: int
    comments: int
    tips: Decimal
    ppv_unlocks: int
    revenue: Decimal


@router.get("/posts", response=list[PostOut])
@paginate(page_size=50)
def post_list(request: HttpRequest, creator_id: int | None = Query(None, ge=1, le=MAX_ID)):
    return selectors.post_list(membership=_filter_member(request, creator_id), creator_id=creator_id)


CSV_UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary", "description": "The CSV file."}},
                "required": ["file"],
            },
            "encoding": {"file": {"contentType": "text/csv"}},
            "example": {
                "file": "platform,posted_at,category,views,likes\nonlyfans,2026-10-01T20:00:00Z,photo,1000,120\n"
            },
        }
    },
}


@router.post(
    "/creators/{creator_id}/posts/import",
    response={200: ImportReport, 409: ErrorOut},
    openapi_extra={"requestBody": CSV_UPLOAD},
)
def posts_import(request: HttpRequest, creator_id: Id):
    """Import posts from a CSV file (multipart field ``file``); answers a per-row report.
    Columns are documented in docs/studio-data.md. 409 when another import for the creator runs."""
    from apps.core.errors import ApplicationError

    membership, creator = _creator(request, creator_id)
    upload = request.FILES.get("file")
    if upload is None:
        raise ApplicationError("Attach the CSV file as the multipart field “file”.", field="file")
    return posts_import_csv(membership=membership, creator=creator, file=upload)
