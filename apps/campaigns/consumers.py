"""Live campaign progress (``ws/campaigns/<id>/``): the campaign page's progress panel —
progress bar, counters, send rate, the platform account's rate in force and limiter wait — sent
as a ready-to-swap HTML fragment (an out-of-band swap of ``#campaign-progress``, htmx's ws
extension) whenever it changes.

Its numbers are counted from the deliveries (services.campaign_stats: one aggregate on the
(source, source_id, status, sent_at) index). The socket joins the campaign's group on the event
bus and redraws as soon as a ``campaign.progress`` event arrives (events.py: about once a second
while deliveries move); it also reads every POLL_SECONDS, because the worker that sends, on the
embedded default, shares no channel layer with the web process, and because pausing, resuming
and cancelling change the panel's buttons without a delivery moving. The read is cheap and stops
with the socket. Connecting needs a live session and a membership (apps/accounts/realtime.py) that may see
the campaign (its creator: a chatter's assigned ones); the membership is checked again on every
read, and a member who lost access gets the socket closed with 4403. Clients only listen. The
panel carries the buttons the member may use now (pause, resume, cancel), so they follow the
status; their form token is masked from the page's CSRF cookie, as ``{% csrf_token %}`` does.
"""

from __future__ import annotations

import asyncio
import contextlib

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import Http404, HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string

from apps.accounts.realtime import CLOSE_FORBIDDEN, MemberSocketMixin
from apps.campaigns.events import PROGRESS, campaign_group
from apps.core.asyncdb import database_call

POLL_SECONDS = 1.0


def _csrf_token(scope: dict) -> str:
    """A masked form token for the panel's buttons, from the page's CSRF cookie (the same token
    ``{% csrf_token %}`` renders on the page itself)."""
    secret = (scope.get("cookies") or {}).get(settings.CSRF_COOKIE_NAME, "")
    if not secret:
        return ""
    request = HttpRequest()
    request.META["CSRF_COOKIE"] = secret
    return get_token(request)


def _panel(membership_id: int, campaign_id: int, csrf_token: str = "") -> tuple[str, bool] | None:
    """(the progress panel's HTML, whether the campaign can still change), or None when the
    member may no longer see it."""
    from apps.accounts.models import Membership
    from apps.accounts.permissions import Perm, has_perm
    from apps.campaigns.models import FINISHED
    from apps.campaigns.selectors import campaign_get_for_member
    from apps.campaigns.views import progress_context

    membership = Membership.objects.select_related("user").filter(pk=membership_id, user__is_active=True).first()
    if membership is None or not has_perm(membership, Perm.VIEW):
        return None
    try:
        campaign = campaign_get_for_member(membership=membership, campaign_id=campaign_id)
    except Http404:
        return None
    context = {**progress_context(campaign, membership), "oob": True, "csrf_token": csrf_token}
    html = render_to_string("campaigns/progress.html", context)
    return html, campaign.status not in FINISHED


class CampaignProgressConsumer(MemberSocketMixin, AsyncWebsocketConsumer):
    poller: asyncio.Task | None = None
    group: str | None = None

    async def connect(self) -> None:
        membership = await self.member_connect()
        if membership is None:
            return
        self.membership_id = membership.pk
        self.campaign_id = int(self.scope["url_route"]["kwargs"]["campaign_id"])
        self.csrf_token = _csrf_token(self.scope)
        first = await database_call(_panel)(self.membership_id, self.campaign_id, self.csrf_token)
        if first is None:
            await self.member_disconnect()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.agency_id = membership.agency_id
        self.moved = asyncio.Event()
        if first[1]:
            self.group = campaign_group(self.campaign_id)
            await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.last_html = first[0]
        await self.send(text_data=first[0])
        if first[1]:
            self.poller = asyncio.create_task(self._poll())

    async def outbox_batch(self, message: dict) -> None:
        """Several bus events for this group sent as one message (apps/core/outbox.py)."""
        for event in message.get("events") or []:
            await self.outbox_event(event)

    async def outbox_event(self, event: dict) -> None:
        """A ``campaign.progress`` of this campaign: redraw now rather than at the next read."""
        payload = event.get("payload") or {}
        ours = event.get("agency_id") == self.agency_id and payload.get("campaign_id") == self.campaign_id
        if ours and event.get("kind") == PROGRESS:
            self.moved.set()

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.moved.wait(), timeout=POLL_SECONDS)
            self.moved.clear()
            panel = await database_call(_panel)(self.membership_id, self.campaign_id, self.csrf_token)
            if panel is None:
                await self.close(code=CLOSE_FORBIDDEN)
                return
            html, live = panel
            if html != self.last_html:
                self.last_html = html
                await self.send(text_data=html)
            if not live:
                return  # completed or cancelled: nothing will change any more

    async def disconnect(self, code: int) -> None:
        await self.member_disconnect()
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
        if self.poller is not None and self.poller is not asyncio.current_task():
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.poller

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients only listen; anything they send is ignored."""
