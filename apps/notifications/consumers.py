"""Live per-user notifications over a websocket (htmx ws extension on every page).

The client receives ready-to-swap HTML fragments (out-of-band swaps into the toast region),
rendered with autoescaping from stored notifications. Only the logged-in user's own group is
joined, for the agency of the membership current at connect (the session must be live and have
passed the agency's second factor: apps/accounts/realtime.py; ending it closes the socket);
messages for another agency are dropped. The membership is read again before each notification
is pushed: once it is gone (the member was removed, or the user deactivated) the socket is closed
with 4403 and nothing more is sent. The socket never acts on what the client sends.

Notifications arrive as ``notification.created`` events from the event bus (apps/core/events.py),
at least once: an event id already shown on this socket is dropped, so a redelivery after a
dispatcher crash shows no second toast. ``notification.message`` frames carrying ready HTML are
still accepted from the group (the same checks apply).
"""

from __future__ import annotations

from collections import deque

from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from apps.accounts.realtime import CLOSE_FORBIDDEN, MemberSocketMixin
from apps.core.asyncdb import database_call
from apps.core.logging import new_request_id, set_request_id
from apps.notifications.selectors import notification_recipient_is_member
from apps.notifications.services import user_group

SEEN_EVENTS = 256  # event ids remembered per socket for the at-least-once dedupe


class NotificationConsumer(MemberSocketMixin, AsyncWebsocketConsumer):
    agency_id: int | None = None

    async def connect(self) -> None:
        headers = dict(self.scope.get("headers") or [])
        set_request_id(new_request_id(headers.get(b"x-request-id", b"").decode("latin-1")))
        membership = await self.member_connect()
        if membership is None:
            return
        self.agency_id = membership.agency_id
        self.seen: deque[int] = deque(maxlen=SEEN_EVENTS)
        self.group = user_group(membership.user_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.member_disconnect()
        await self._leave()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients only listen; anything they send is ignored."""

    async def outbox_batch(self, message: dict) -> None:
        """Several bus events for this group sent as one message (apps/core/outbox.py)."""
        for event in message.get("events") or []:
            await self.outbox_event(event)

    async def outbox_event(self, event: dict) -> None:
        """A bus event for this user's group: a ``notification.created`` becomes a toast."""
        if event.get("kind") != "notification.created" or event.get("id") in self.seen:
            return
        if event.get("user_id") != self.scope["user"].pk:
            return
        self.seen.append(event["id"])
        html = render_to_string("notifications/partials/toast.html", {"notification": event.get("payload") or {}})
        await self.notification_message({"agency_id": event.get("agency_id"), "html": html})

    async def notification_message(self, event: dict) -> None:
        if self.agency_id is None or event.get("agency_id") != self.agency_id:
            return
        still_member = await database_call(notification_recipient_is_member)(
            user_id=self.scope["user"].pk, agency_id=self.agency_id
        )
        if not still_member:
            self.agency_id = None  # frames still queued for this socket are dropped too
            await self._leave()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.send(text_data=event["html"])

    async def _leave(self) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            del self.group
