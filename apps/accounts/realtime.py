"""Who may hold a websocket open, for every consumer alike.

A page request passes the session, the agency's two-factor requirement and the membership on
every request; a websocket lives for hours after its one handshake. So each consumer:

- at connect, asks ``socket_membership(scope)``: the user is logged in, the session still exists
  in the store (not ended from the sessions page, not logged out), the session passed the second
  factor when the member's agency requires it, and the membership is current; otherwise it
  closes with 4403;
- joins ``session_group(session_key)`` (``MemberSocketMixin.member_connect`` does both), so
  that ending the session (the sessions page, "log out everywhere", logging out) closes every
  socket of that session at once, in every process the channel layer reaches;
- before each action, re-reads the membership (``membership_refresh``), as before.

With the in-memory channel layer of the embedded default the close reaches the sockets of the
process that ended the session (``make run`` serves every page and socket from one process).
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from apps.accounts.models import Membership, User
from apps.core.asyncdb import database_call

logger = logging.getLogger(__name__)

CLOSE_FORBIDDEN = 4403


def session_group(session_key: str) -> str:
    return f"session.{session_key}"


def _session_verified(session, user: User) -> bool:
    """Whether this session signed in with a confirmed second factor of ``user`` (django-otp's
    own rule in ``OTPMiddleware._finalize_device``)."""
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    if not persistent_id:
        return False
    device = Device.from_persistent_id(persistent_id)
    return device is not None and device.user_id == user.pk and device.confirmed


def socket_membership_sync(scope: dict) -> Membership | None:
    from apps.accounts.middleware import SESSION_AGENCY
    from apps.accounts.selectors import membership_current

    user = scope.get("user")
    session = scope.get("session")
    if user is None or not user.is_authenticated or session is None:
        return None
    # The session is in the store: AuthMiddleware has just loaded it to find the user, and a
    # session ended, logged out or expired loads empty (no user) with its key cleared. Asking the
    # store again (``sessions.session_alive``) was a second query at every connect.
    if not session.session_key:
        return None
    membership = membership_current(user=user, agency_id=session.get(SESSION_AGENCY))
    if membership is None:
        return None
    if membership.agency.require_two_factor and not _session_verified(session, user):
        return None
    return membership


socket_membership = database_call(socket_membership_sync)


def sockets_close_for_sessions(session_keys: list[str]) -> None:
    """Close every websocket of these sessions once the current transaction commits."""
    keys = [key for key in session_keys if key]
    if keys:
        transaction.on_commit(lambda: _broadcast_close(keys))


def _broadcast_close(session_keys: list[str]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for key in session_keys:
        try:
            async_to_sync(layer.group_send)(session_group(key), {"type": "session.ended"})
        except Exception:  # a socket left open is closed at its next action; never fail a log-out
            logger.exception("could not tell the websockets of a session that it ended")


class MemberSocketMixin:
    """For ``AsyncWebsocketConsumer`` subclasses: ``member_connect()`` in ``connect()`` and
    ``member_disconnect()`` in ``disconnect()``; ``session.ended`` events close the socket."""

    _session_group: str | None = None

    async def member_connect(self) -> Membership | None:
        """The membership this socket acts for, after joining the session's group; None after
        closing the socket with 4403."""
        membership = await socket_membership(self.scope)
        if membership is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return None
        self._session_group = session_group(self.scope["session"].session_key)
        await self.channel_layer.group_add(self._session_group, self.channel_name)
        return membership

    async def member_disconnect(self) -> None:
        if self._session_group is not None:
            await self.channel_layer.group_discard(self._session_group, self.channel_name)
            self._session_group = None

    async def session_ended(self, event: dict) -> None:
        await self.member_disconnect()
        await self.close(code=CLOSE_FORBIDDEN)
