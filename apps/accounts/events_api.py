"""The agency's event stream and outbox health, at /api/v1/events/….

``GET /api/v1/events/stream`` is Server-Sent Events of the caller's agency: every committed
outbox event (apps/core/events.py) for the whole agency or for the calling member, as
``id:`` (the event id), ``event:`` (its kind) and ``data:`` (its payload as JSON), with a
``: heartbeat`` comment every EVENTS_SSE_HEARTBEAT_SECONDS. The stream reads the outbox table
itself (polled every EVENTS_SSE_POLL_SECONDS, so it works in every process and mode) and ends
after EVENTS_SSE_MAX_SECONDS; the client reconnects with ``Last-Event-ID`` (EventSource does it
by itself; or ``?last_event_id=``) and receives what it missed and nothing twice. It answers 406
unless the request accepts ``text/event-stream``, so a plain GET never hangs on an endless body.
The stream is left out of the OpenAPI schema (a fuzzer cannot test an endless response) and is
documented in docs/events.md.

``GET /api/v1/events/outbox`` shows owners and managers the agency's undispatched events, how
many failed, and the lag (age of the oldest undispatched one). Read only.

It lives in accounts because this is the lowest layer that knows memberships: core owns the
outbox but knows no tenant.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from apps.accounts.api import api_membership
from apps.accounts.permissions import Perm, require
from apps.core.asyncdb import database_call
from apps.core.events import events_after, latest_event_id
from apps.core.openapi import MAX_ID
from apps.core.outbox import outbox_status

router = Router(tags=["events"])

STREAM_BATCH = 200
RETRY_MS = 2000  # what EventSource waits before reconnecting after the stream ends


def _last_event_id(request: HttpRequest, query_value: int | None) -> int | None:
    header = request.headers.get("Last-Event-ID", "").strip()
    if not header:
        return query_value
    if not (header.isascii() and header.isdigit()) or int(header) > MAX_ID:  # "²".isdigit() is True
        raise HttpError(400, "Last-Event-ID must be the id of an event (a whole number).")
    return int(header)


def sse_frame(event) -> str:
    data = json.dumps(event.payload, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.pk}\nevent: {event.kind}\ndata: {data}\n\n"


@router.get("/events/stream", include_in_schema=False)
async def event_stream(request: HttpRequest, last_event_id: int | None = Query(None, ge=0, le=MAX_ID)):
    """The agency's events as Server-Sent Events (see the module docstring and docs/events.md)."""
    if "text/event-stream" not in request.headers.get("Accept", ""):
        raise HttpError(406, "This endpoint streams Server-Sent Events: send 'Accept: text/event-stream'.")
    resume_from = _last_event_id(request, last_event_id)
    membership = await sync_to_async(api_membership)(request)
    agency_id, user_id = membership.agency_id, membership.user_id
    cursor = resume_from if resume_from is not None else await database_call(latest_event_id)()
    fetch = database_call(events_after)

    async def frames():
        nonlocal cursor
        yield f"retry: {RETRY_MS}\n: connected, after event {cursor}\n\n"
        started = last_frame = time.monotonic()
        while time.monotonic() - started < settings.EVENTS_SSE_MAX_SECONDS:
            batch = await fetch(agency_id=agency_id, user_id=user_id, after_id=cursor, limit=STREAM_BATCH)
            if batch:
                cursor = batch[-1].pk
                last_frame = time.monotonic()
                yield "".join(sse_frame(event) for event in batch)
                if len(batch) == STREAM_BATCH:
                    continue
            elif time.monotonic() - last_frame >= settings.EVENTS_SSE_HEARTBEAT_SECONDS:
                last_frame = time.monotonic()
                yield ": heartbeat\n\n"
            await asyncio.sleep(settings.EVENTS_SSE_POLL_SECONDS)

    response = StreamingHttpResponse(frames(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


class OutboxStatusOut(Schema):
    pending: int
    failing: int
    oldest_pending_at: datetime | None
    lag_seconds: float


@router.get("/events/outbox", response=OutboxStatusOut)
def outbox_health(request: HttpRequest):
    """The agency's undispatched events, how many of them failed at least once (they are retried
    with backoff), and the lag: the age in seconds of the oldest undispatched event (0 when none).
    Owners and managers only."""
    membership = api_membership(request)
    require(membership, Perm.MANAGE_MEMBERS)
    return outbox_status(agency_id=membership.agency_id)
