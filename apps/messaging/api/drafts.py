"""API for AI drafts (mounted at /api/v1/): ask for drafts of a reply or a PPV upsell (JSON, or
Server-Sent Events while they stream), read one, discard one.

Thin: apps/messaging/drafts.py authorises, writes, checks, scores and saves. Nothing here sends a
message; a draft is used by sending its (edited) text through the messages API.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Query, Router, Schema, Status

from apps.accounts.api import api_membership
from apps.core.openapi import ErrorOut, Id
from apps.messaging import drafts as service
from apps.messaging.models import Draft
from apps.messaging.selectors import draft_get_for_member

router = Router(tags=["drafts"])

DraftKindName = Literal["reply", "upsell"]


class DraftsIn(Schema):
    kind: DraftKindName = Field("reply", description="reply: answer the fan; upsell: offer a PPV, with a price.")
    count: int = Field(service.MAX_DRAFTS, ge=1, le=service.MAX_DRAFTS, description="How many drafts (1 to 3).")


class DraftOut(Schema):
    id: int
    conversation_id: int
    creator_id: int
    kind: str
    text: str
    score: int = Field(description="Personalization, 0-100: the sum of the factors.")
    factors: dict[str, int] = Field(
        description="Points per factor: uses name (of 20), refers to history (25), fits the tier (20), "
        "tone match (20), length (15)."
    )
    suggestions: list[str]
    suggested_price: Decimal | None = Field(
        None, description="Upsells: the PPV price to offer, in the creator's currency."
    )
    price_reason: str
    status: str
    provider: str
    created_at: datetime


class DraftErrorOut(Schema):
    index: int
    message: str


class DraftBatchOut(Schema):
    drafts: list[DraftOut]
    errors: list[DraftErrorOut] = Field(description="Drafts of the batch that could not be written, and why.")


@router.post(
    "/conversations/{conversation_id}/drafts",
    response={201: DraftBatchOut, 502: ErrorOut},
    summary="Write AI drafts for a conversation",
)
def drafts_create(request: HttpRequest, conversation_id: Id, payload: DraftsIn):
    """Write ``count`` drafts and wait for them: the saved drafts (pending, nothing is sent), each
    with its score, factors, suggestions and, for upsells, a price; plus the drafts that could not
    be written (refused by the safety policy, or the provider failed). 502 when none could."""
    membership = api_membership(request)
    prepared = service.drafts_prepare(
        membership=membership, conversation_id=conversation_id, kind=payload.kind, count=payload.count
    )
    drafts, errors = service.drafts_generate_all(prepared)
    if not drafts:
        raise service.DraftsUnavailable(errors[0][1] if errors else service.FAILED_MESSAGE)
    return Status(201, {"drafts": drafts, "errors": [{"index": i, "message": m} for i, m in errors]})


def _draft_data(draft: Draft) -> dict:
    return DraftOut.from_orm(draft).model_dump(mode="json")


def _sse(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["chunk", "draft", "error", "done"]},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {"type": "object"}},
    },
}
SSE_RESPONSE = {
    "200": {
        "description": "Server-Sent Events, the drafts side by side: `chunk` ({index, text}) as each streams, "
        "then per draft one `draft` ({index, draft}: the saved draft) or one `error` ({index, message}), "
        "then `done` ({}).",
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    }
}


@router.get(
    "/conversations/{conversation_id}/drafts/stream",
    response={200: None},
    openapi_extra={"responses": SSE_RESPONSE},
    summary="Stream AI drafts for a conversation",
)
async def drafts_stream(
    request: HttpRequest,
    conversation_id: Id,
    kind: DraftKindName = "reply",
    count: int = Query(service.MAX_DRAFTS, ge=1, le=service.MAX_DRAFTS),
):
    """The same drafts as Server-Sent Events. Authorisation and input are checked before the
    stream starts (404, 403, 422 as JSON); closing the connection stops the upstream calls."""
    membership = await sync_to_async(api_membership)(request)
    prepared = await sync_to_async(service.drafts_prepare)(
        membership=membership, conversation_id=conversation_id, kind=kind, count=count
    )

    async def events():
        async for event in service.drafts_stream(
            membership=membership, conversation_id=conversation_id, prepared=prepared
        ):
            if event.type == "chunk":
                yield _sse("chunk", {"index": event.index, "text": event.text})
            elif event.type == "draft" and event.draft is not None:
                yield _sse("draft", {"index": event.index, "draft": _draft_data(event.draft)})
            elif event.type == "error":
                yield _sse("error", {"index": event.index, "message": event.message})
            elif event.type == "done":
                yield _sse("done", {})

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@router.get("/drafts/{draft_id}", response=DraftOut, summary="Read a draft")
def draft_detail(request: HttpRequest, draft_id: Id):
    return draft_get_for_member(membership=api_membership(request), draft_id=draft_id)


@router.post("/drafts/{draft_id}/discard", response=DraftOut, summary="Discard a draft")
def draft_discard(request: HttpRequest, draft_id: Id):
    """Drop a pending draft (discarding twice is harmless; a sent draft answers 400)."""
    membership = api_membership(request)
    draft = draft_get_for_member(membership=membership, draft_id=draft_id)
    service.draft_discard(membership=membership, draft=draft)
    return draft
