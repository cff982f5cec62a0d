"""Live per-user notifications over a websocket (htmx ws extension on every page).

The client receives ready-to-swap HTML fragments (out-of-band swaps into the toast region),
rendered with autoescaping from stored notifications. Only the logged-in user's own group is
joined; messages for another agency than the one the socket was opened for are dropped.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.core.logging import new_request_id, set_request_id
from apps.core.services import user_group

CLOSE_FORBIDDEN = 4403


class NotificationConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        headers = dict(self.scope.get("headers") or [])
        set_request_id(new_request_id(headers.get(b"x-request-id", b"").decode("latin-1")))
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.agency_id = await self._current_agency_id()
        if self.agency_id is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    @database_sync_to_async
    def _current_agency_id(self) -> int | None:
        from apps.accounts.middleware import SESSION_AGENCY
        from apps.accounts.selectors import membership_current

        session = self.scope.get("session") or {}
        membership = membership_current(user=self.scope["user"], agency_id=session.get(SESSION_AGENCY))
        return membership.agency_id if membership else None

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients only listen; anything they send is ignored."""

    async def notification_message(self, event: dict) -> None:
        if event.get("agency_id") != self.agency_id:
            return
        await self.send(text_data=event["html"])
