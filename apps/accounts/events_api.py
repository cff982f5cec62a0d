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

Access is checked again every EVENTS_SSE_HEARTBEAT_SECONDS (15 s) while the stream is open: the
membership still exists and its user is active, the API token is neither revoked nor expired, the
browser session was not ended. Otherwise the stream ends (``: access ended``); the client's
reconnect then gets the 401/403 every request would. A chatter's stream leaves out events whose
payload names a ``creator_id`` they are not assigned to (as the inbox websocket does), the
assignments read again at each of those checks; the cursor still moves past them.

Events are delivered in id order and a stream never skips one committed late. Ids are handed out
when a row is inserted, so on PostgreSQL event N+1 can commit before N; a stream that sent N+1 and
moved on would never show N, and one that sent N late would make ``Last-Event-ID: N`` repeat N+1.
So the stream holds an event back while an id below it is missing and that gap is young: this
stream first saw it less than GAP_WAIT_SECONDS ago (``GapClock``; counted from the first sight,
not from when the row after the gap was inserted, so a long transaction whose event committed
late still opens a full wait). A gap that outlives the wait was a rolled-back transaction and is
passed over, as are ids below the oldest kept event (purged). The check runs after the batch is
read, and a transaction may commit in between (the check then sees an id the batch lacks), so a
batch that may be sent is read again up to the settled id. Cost: one COUNT over the id range of
a non-empty batch (the primary key index: ids only, no other agency's row is read), a read of
the ids after the last old gap when that count shows one, and the second read of a batch with
something to send; an event right after a rolled-back publish arrives up to GAP_WAIT_SECONDS
late. The ids of every agency are counted because one sequence serves them all: a missing id may
become any agency's event when it commits.

So that quiet agencies and resuming clients do not wait at gaps rolled back long ago: a poll that
finds nothing for the agency still looks at the newest id (``latest_event_id``, the primary key's
end), so the clock has seen every id before the agency's next event; and a stream starts with
every id below an event inserted more than GAP_SEED_SECONDS ago counted as old (no transaction
that publishes an event stays open that long: a task's hard limit is 300 s).

``GET /api/v1/events/outbox`` shows owners and managers the agency's undispatched events, how
many failed, and the lag (age of the oldest undispatched one). ``GET /api/v1/events/outbox/failing``
lists the failing ones with their errors and next attempt; ``POST
/api/v1/events/outbox/{event_id}/retry`` makes one due now instead of after its backoff.

It lives in accounts because this is the lowest layer that knows memberships: core owns the
outbox but knows no tenant.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Min
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from ninja import Query, Router, Schema
from ninja.errors import HttpError
from ninja.pagination import paginate

from apps.accounts.api import api_membership
from apps.accounts.models import ApiToken, Membership
from apps.accounts.permissions import Perm, require, sees_all_creators
from apps.accounts.selectors import creator_list, membership_refresh
from apps.accounts.sessions import session_alive
from apps.core.asyncdb import database_call
from apps.core.events import events_after, latest_event_id
from apps.core.models import OutboxEvent
from apps.core.openapi import MAX_ID, Id
from apps.core.outbox import outbox_failing, outbox_retry_now, outbox_status

router = Router(tags=["events"])

STREAM_BATCH = 200
RETRY_MS = 2000  # what EventSource waits before reconnecting after the stream ends
GAP_WAIT_SECONDS = 10.0  # how long a missing id below a committed one may still commit (see above)
GAP_SEED_SECONDS = 900  # ids below an event inserted this long ago are old gaps from a stream's start


def _last_event_id(request: HttpRequest, query_value: int | None) -> int | None:
    header = request.headers.get("Last-Event-ID", "").strip()
    if not header:
        return query_value
    digits = header.lstrip("0") or "0"
    # "²".isdigit() is True; int() refuses 4,300 digits or more (a 500), so the length goes first.
    if not (header.isascii() and header.isdigit()) or len(digits) > len(str(MAX_ID)) or int(digits) > MAX_ID:
        raise HttpError(400, "Last-Event-ID must be the id of an event (a whole number).")
    return int(digits)


def sse_frame(event) -> str:
    data = json.dumps(event.payload, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.pk}\nevent: {event.kind}\ndata: {data}\n\n"


def gap_clock_start() -> GapClock:
    """A stream's clock, with the ids below the newest event inserted more than GAP_SEED_SECONDS
    ago already old (walks the primary key down from its end through the recent events only)."""
    clock = GapClock()
    cutoff = timezone.now() - timedelta(seconds=GAP_SEED_SECONDS)
    aged = OutboxEvent.objects.filter(created_at__lte=cutoff).order_by("-id").values_list("id", flat=True).first()
    clock.old_through = aged or 0
    return clock


class GapClock:
    """When one stream first saw the ids it found missing (see the module docstring): every scan
    that reached further than the last is remembered with its time, so an id missing now was
    first seen by the first scan that reached it. Scans older than GAP_WAIT_SECONDS fold into
    ``old_through``: every id up to there still missing is an old gap, passed over."""

    def __init__(self) -> None:
        self.old_through = 0
        self._scans: deque[tuple[int, float]] = deque()  # (highest id scanned, when), both ascending

    def saw(self, up_to: int, now: float) -> None:
        if up_to > max(self.old_through, self._scans[-1][0] if self._scans else 0):
            self._scans.append((up_to, now))
        while self._scans and now - self._scans[0][1] >= GAP_WAIT_SECONDS:
            self.old_through = max(self.old_through, self._scans.popleft()[0])


def settled_up_to(*, after_id: int, up_to: int, clock: GapClock) -> int:
    """The highest id ``<= up_to`` below which no event can still commit: ``up_to`` when every id
    in (after_id, up_to] exists or is an old gap, else the id before the first young gap."""
    clock.saw(up_to, time.monotonic())
    if OutboxEvent.objects.filter(id__gt=after_id, id__lte=up_to).count() == up_to - after_id:
        return up_to
    # Ids below every kept event were purged (or resumed from long ago), not in flight.
    oldest = OutboxEvent.objects.aggregate(oldest=Min("id"))["oldest"] or 1
    start = max(after_id, oldest - 1, clock.old_through)
    expected = start + 1
    ids = OutboxEvent.objects.filter(id__gt=start, id__lte=up_to).order_by("id").values_list("id", flat=True)
    for event_id in ids.iterator(chunk_size=2000):  # stops reading at the first young gap
        if event_id > expected:
            return expected - 1  # ``expected`` is missing and was first seen less than the wait ago
        expected = event_id + 1
    return up_to


def stream_batch(*, agency_id: int, user_id: int | None, after_id: int, clock: GapClock) -> list:
    """The next events of the stream after ``after_id``: the agency's (and the member's) events in
    id order, cut before the first id that may still commit below them."""
    batch = events_after(agency_id=agency_id, user_id=user_id, after_id=after_id, limit=STREAM_BATCH)
    if not batch:
        clock.saw(latest_event_id(), time.monotonic())  # the gaps before this agency's next event
        return batch
    settled = settled_up_to(after_id=after_id, up_to=batch[-1].pk, clock=clock)
    if settled < batch[0].pk:
        return []
    # The check ran after the batch was read, so an id it found committed may have committed after
    # that read: N + 1 read without N, then N commits, then the check sees no gap. Sending this batch
    # would skip N for good (the cursor moves past it); read again, up to what the check settled.
    batch = events_after(agency_id=agency_id, user_id=user_id, after_id=after_id, limit=STREAM_BATCH)
    return [event for event in batch if event.pk <= settled]


def access_still_granted(*, membership: Membership, token_id: int | None, session_key: str | None) -> Membership | None:
    """The stream's caller as they are now when they may still read it (the membership exists and
    its user is active, the API token if any is live, the browser session if any still exists),
    else None."""
    current = membership_refresh(membership=membership)
    if current is None:
        return None
    if token_id is not None:
        live = ApiToken.objects.filter(
            pk=token_id, membership_id=membership.pk, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
        return current if live.exists() else None
    return current if session_key is not None and session_alive(session_key) else None


def stream_creator_ids(*, membership: Membership) -> frozenset[int] | None:
    """The creators whose events the member's stream carries: None for every creator (owners,
    managers, viewers), a chatter's assigned ones otherwise (as the inbox websocket filters)."""
    if sees_all_creators(membership):
        return None
    return frozenset(creator_list(membership=membership, include_archived=True).values_list("pk", flat=True))


def event_visible(event, creator_ids: frozenset[int] | None) -> bool:
    """Whether an event goes to a stream limited to ``creator_ids``: one naming a ``creator_id``
    only when it is one of them; one about no creator (the agency's, the member's) always."""
    if creator_ids is None:
        return True
    creator_id = event.payload.get("creator_id") if isinstance(event.payload, dict) else None
    return creator_id is None or creator_id in creator_ids


@router.get("/events/stream", include_in_schema=False)
async def event_stream(request: HttpRequest, last_event_id: int | None = Query(None, ge=0, le=MAX_ID)):
    """The agency's events as Server-Sent Events (see the module docstring and docs/events.md)."""
    if "text/event-stream" not in request.headers.get("Accept", ""):
        raise HttpError(406, "This endpoint streams Server-Sent Events: send 'Accept: text/event-stream'.")
    resume_from = _last_event_id(request, last_event_id)
    membership = await sync_to_async(api_membership)(request)
    agency_id, user_id = membership.agency_id, membership.user_id
    token_id = request.auth.pk if isinstance(request.auth, ApiToken) else None
    session_key = None if token_id is not None else request.session.session_key
    cursor = resume_from if resume_from is not None else await database_call(latest_event_id)()
    fetch = database_call(stream_batch)
    allowed = database_call(access_still_granted)
    clock = await database_call(gap_clock_start)()
    creators_of = database_call(stream_creator_ids)
    creator_ids = await creators_of(membership=membership)

    async def frames():
        nonlocal cursor, creator_ids
        yield f"retry: {RETRY_MS}\n: connected, after event {cursor}\n\n"
        started = last_frame = last_check = time.monotonic()
        while time.monotonic() - started < settings.EVENTS_SSE_MAX_SECONDS:
            if time.monotonic() - last_check >= settings.EVENTS_SSE_HEARTBEAT_SECONDS:
                last_check = time.monotonic()
                current = await allowed(membership=membership, token_id=token_id, session_key=session_key)
                if current is None:
                    yield ": access ended\n\n"
                    return
                creator_ids = await creators_of(membership=current)  # a role or an assignment changed
            batch = await fetch(agency_id=agency_id, user_id=user_id, after_id=cursor, clock=clock)
            if batch:
                cursor = batch[-1].pk  # past the events of other creators too: they are never sent
            shown = [event for event in batch if event_visible(event, creator_ids)]
            if shown:
                last_frame = time.monotonic()
                yield "".join(sse_frame(event) for event in shown)
            elif time.monotonic() - last_frame >= settings.EVENTS_SSE_HEARTBEAT_SECONDS:
                last_frame = time.monotonic()
                yield ": heartbeat\n\n"
            if len(batch) == STREAM_BATCH:
                continue
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


class FailingEventOut(Schema):
    id: int
    kind: str
    created_at: datetime
    attempts: int
    last_error: str
    next_attempt_at: datetime | None

    @staticmethod
    def resolve_next_attempt_at(obj: OutboxEvent) -> datetime | None:
        return obj.claimed_until


@router.get("/events/outbox/failing", response=list[FailingEventOut])
@paginate(page_size=50)
def outbox_failing_list(request: HttpRequest):
    """The agency's undispatched events that failed at least once, oldest first, each with its
    last error, attempts and next attempt (they are retried with backoff up to 5 minutes apart).
    Owners and managers only."""
    membership = api_membership(request)
    require(membership, Perm.MANAGE_MEMBERS)
    return outbox_failing(agency_id=membership.agency_id).order_by("id")


@router.post("/events/outbox/{event_id}/retry", response=FailingEventOut)
def outbox_retry(request: HttpRequest, event_id: Id):
    """Send one failing event on the dispatcher's next pass instead of after its backoff. 404 for
    an event that is not the agency's, already sent, or never failed. Owners and managers only."""
    membership = api_membership(request)
    require(membership, Perm.MANAGE_MEMBERS)
    event = outbox_retry_now(agency_id=membership.agency_id, event_id=event_id)
    if event is None:
        raise HttpError(404, "No failing event with that id in this agency.")
    return event
