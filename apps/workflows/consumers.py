"""The run page's live view (``ws/workflows/runs/<run_id>/``): the run's body — state, the DAG with
each step's state, errors, output, history — sent as a ready-to-swap HTML fragment (an out-of-band
swap of ``#run-body``, htmx's ws extension) whenever the run changes.

Changes come from the event bus: the engine and the member actions publish ``workflow.run_changed``
(apps/workflows/events.py) to the run's group, which this socket joins. A burst of events (a
fan-out finishing) is coalesced for COALESCE_SECONDS into one re-render. Delivery is at least once:
an event id already handled is dropped, and a fragment identical to the last one sent is not sent
again. Steps run in the worker; the embedded default's in-memory channel layer does not reach this
process from there, so every TAIL_SECONDS the socket also reads the outbox table for this run's
events (one aggregate on the (agency, id) index), as the SSE stream does: both modes, one code path.
While the run is active (pending or running) the tail reads every TAIL_SECONDS; a failed,
needs-attention, succeeded or cancelled run changes only when a member acts (retry, skip, cancel),
so its page reads only every IDLE_TAIL_SECONDS: the member's action usually arrives through the
run's group at once, and the slow read catches one that did not (dispatched from a worker in the
embedded default, or landing while the page joined its group or was redrawing). The redraw that
shows the run running again puts the tail back on its short period.

Connecting needs a live session and a membership (apps/accounts/realtime.py) that may see the run
(another agency's run, like a missing one, closes with 4403). The membership is read again before
every render: a removed member's socket is closed with 4403 and nothing more is sent. Every text in
the fragment is autoescaped by the template. Clients only listen. The fragment's buttons carry a
form token masked from the page's CSRF cookie, as ``{% csrf_token %}`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db.models import Count, Max
from django.http import Http404, HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string

from apps.accounts.realtime import CLOSE_FORBIDDEN, MemberSocketMixin
from apps.core.asyncdb import database_call
from apps.core.events import latest_event_id
from apps.workflows.events import RUN_CHANGED, run_group

COALESCE_SECONDS = 0.1
TAIL_SECONDS = 2.0
IDLE_TAIL_SECONDS = 15.0  # a run no worker is moving: only a member's action changes it
SEEN_EVENTS = 256  # event ids remembered per socket for the at-least-once dedupe


def _csrf_token(scope: dict) -> str:
    """A masked form token from the page's CSRF cookie (what ``{% csrf_token %}`` renders)."""
    secret = (scope.get("cookies") or {}).get(settings.CSRF_COOKIE_NAME, "")
    if not secret:
        return ""
    request = HttpRequest()
    request.META["CSRF_COOKIE"] = secret
    return get_token(request)


def _fragment(membership, run_id: int, csrf_token: str) -> tuple[str, bool] | None:
    """(the run body's HTML, whether the run is active: it changes without a member acting), or
    None when the member may no longer see the run (removed, deactivated, or not their agency's)."""
    from apps.accounts.permissions import Perm, has_perm
    from apps.accounts.selectors import membership_refresh
    from apps.workflows import selectors
    from apps.workflows.views import run_context

    membership = membership_refresh(membership=membership)
    if membership is None or not has_perm(membership, Perm.VIEW):
        return None
    try:
        run = selectors.run_get_for_member(membership=membership, run_id=run_id)
    except Http404:
        return None
    context = {**run_context(membership=membership, run=run), "oob": True, "csrf_token": csrf_token}
    return render_to_string("workflows/run.html#run-body", context), run.is_active


def _tail(agency_id: int, run_id: int, after_id: int) -> tuple[int, int | None]:
    """How many of this run's events were committed after ``after_id``, and the newest one's id.
    A count, not only the newest id: an event committed late with a lower id still changes it."""
    from apps.core.models import OutboxEvent

    found = OutboxEvent.objects.filter(
        agency_id=agency_id, id__gt=after_id, kind=RUN_CHANGED, payload__run_id=run_id
    ).aggregate(count=Count("id"), newest=Max("id"))
    return found["count"], found["newest"]


class WorkflowRunConsumer(MemberSocketMixin, AsyncWebsocketConsumer):
    membership = None
    flusher: asyncio.Task | None = None
    tailer: asyncio.Task | None = None

    async def connect(self) -> None:
        membership = await self.member_connect()
        if membership is None:
            return
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        self.csrf_token = _csrf_token(self.scope)
        self.since = await database_call(latest_event_id)()
        first = await database_call(_fragment)(membership, self.run_id, self.csrf_token)
        if first is None:
            await self.member_disconnect()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.membership = membership
        self.seen: deque[int] = deque(maxlen=SEEN_EVENTS)
        self.group = run_group(self.run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # What changed between the page's render and this connection is in the first fragment.
        self.last_html = first[0]
        await self.send(text_data=first[0])
        # As of ``since`` (before the fragment was drawn): a change landing while this socket
        # joined its group, which the group never hears, still makes the tail redraw once.
        self.tail_state: tuple[int, int | None] = (0, None)
        self.active = first[1]
        self.tailer = asyncio.create_task(self._tail())

    async def disconnect(self, code: int) -> None:
        await self.member_disconnect()
        await self._stop_tasks()
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients only listen; anything they send is ignored."""

    async def outbox_batch(self, message: dict) -> None:
        """Several bus events for this group sent as one message (apps/core/outbox.py)."""
        for event in message.get("events") or []:
            await self.outbox_event(event)

    async def outbox_event(self, event: dict) -> None:
        """A bus event on this run's group: re-render once the burst settles."""
        if self.membership is None or event.get("kind") != RUN_CHANGED or event.get("id") in self.seen:
            return
        if event.get("agency_id") != self.membership.agency_id:
            return
        if (event.get("payload") or {}).get("run_id") != self.run_id:
            return
        self.seen.append(event["id"])
        self._schedule()

    def _schedule(self) -> None:
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(COALESCE_SECONDS)
        if self.membership is None:
            return
        fragment = await database_call(_fragment)(self.membership, self.run_id, self.csrf_token)
        if fragment is None:
            await self._forbidden()
            return
        html, active = fragment
        if html != self.last_html:
            self.last_html = html
            await self.send(text_data=html)
        reopened, self.active = active and not self.active, active
        if reopened or self.tailer is None or self.tailer.done():
            # A member's retry or skip reopened it: the tail's long sleep is cut short.
            if self.tailer is not None and self.tailer is not asyncio.current_task():
                self.tailer.cancel()
            self.tailer = asyncio.create_task(self._tail())

    async def _tail(self) -> None:
        """The backstop for events this process's channel layer never heard (see the docstring)."""
        while self.membership is not None:
            await asyncio.sleep(TAIL_SECONDS if self.active else IDLE_TAIL_SECONDS)
            state = await database_call(_tail)(self.membership.agency_id, self.run_id, self.since)
            if state != self.tail_state:
                self.tail_state = state
                self._schedule()

    async def _forbidden(self) -> None:
        self.membership = None  # events still queued for this socket are dropped too
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
        await self.close(code=CLOSE_FORBIDDEN)
        current = asyncio.current_task()
        if self.tailer is not None and self.tailer is not current:
            self.tailer.cancel()

    async def session_ended(self, event: dict) -> None:
        self.membership = None
        await self._stop_tasks()
        await super().session_ended(event)

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        for task in (self.flusher, self.tailer):
            if task is not None and task is not current and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
