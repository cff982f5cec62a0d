"""The inbox websocket (``ws/inbox/``, static/js/inbox.js): live updates, the soft lock's
heartbeat, and AI drafts streamed into the composer.

Frames are JSON. The server tells the page *which* conversations changed
(``{"type": "changed", "conversations": [ids]}``) and the page fetches the fragments again through
the ordinary views, which check permissions as every page does; a frame never carries a fan's
data, except the drafts the member asked for on this socket, whose text is HTML-escaped here
before it leaves (``draft.chunk``) and whose finished cards are rendered with autoescaping.

Where changes come from, in both modes, with no branch on the mode:
- ``inbox.changed`` events of the event bus (apps/core/events.py) on the agency's group
  (apps/messaging/events.py), coalesced for COALESCE_SECONDS and filtered to the conversations
  this member may see (chatters: their assigned creators), so one burst costs one query;
- a database poll every POLL_SECONDS: the newest ``last_message_at`` of the visible conversations
  and, for the conversation open on this page (``watch``), its lock and the status of its latest
  messages. The embedded default's channel layer lives in one process, so a message stored or
  delivered by the worker reaches the page through this poll; with Redis it is a cheap backstop.

Connecting needs a live session that passed the agency's second factor when it requires one,
and a membership (apps/accounts/realtime.py); ending the session closes the socket at once.

Client actions: ``watch``, ``lock`` (inbox.js repeats it every 30 s while the composer has focus),
``unlock``, ``drafts`` (``kind`` reply or upsell) and ``cancel``. Every action re-reads the
membership and checks the permission it needs (and the conversation, through the member's own
scoped getter) before it runs; a member removed, deactivated or demoted below the action's
permission gets the socket closed with 4403. Closing the socket releases this member's lock on the
watched conversation. The drafts stream itself is apps/messaging/drafts.py's; this module only
relays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape

from apps.accounts.realtime import CLOSE_FORBIDDEN, MemberSocketMixin
from apps.core.asyncdb import database_call

POLL_SECONDS = 3.0
COALESCE_SECONDS = 0.3
FLUSH_SECONDS = 0.04  # streamed draft text: at most one frame per draft per window
DRAFT_COUNT = 3
HISTORY_WATCHED = 30  # latest messages whose status the poll watches (one history page)
ACTIONS = {"watch", "lock", "unlock", "drafts", "cancel"}
logger = logging.getLogger(__name__)


class InboxConsumer(MemberSocketMixin, AsyncJsonWebsocketConsumer):
    membership = None
    watching: int | None = None

    # --- Connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        membership = await self.member_connect()  # a live session, its second factor, a membership
        if membership is None:
            return
        from apps.accounts.permissions import Perm, has_perm
        from apps.messaging.events import inbox_group

        if not has_perm(membership, Perm.VIEW):
            await self.member_disconnect()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.membership = membership
        self.group = inbox_group(membership.agency_id)
        self.pending_ids: set[int] = set()
        self.pending_fans: set[int] = set()
        self.flusher: asyncio.Task | None = None
        self.drafting: asyncio.Task | None = None
        self.signature: tuple | None = None
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        _, self.signature = await self._poll_state(None)  # changes from now on are news
        self.poller = asyncio.create_task(self._poll())

    async def disconnect(self, code: int) -> None:
        await self.member_disconnect()
        await self._stop_tasks()
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.membership is not None and self.watching is not None:
            with contextlib.suppress(Exception):
                await self._release(self.membership, self.watching)

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        for name in ("poller", "flusher", "drafting"):
            task = getattr(self, name, None)
            if task is not None and task is not current and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _forbidden(self) -> None:
        await self.send_json({"type": "error", "message": "You no longer have access to this inbox."})
        self.membership = None  # the release in disconnect() needs a current membership
        await self._stop_tasks()
        await self.close(code=CLOSE_FORBIDDEN)

    async def session_ended(self, event: dict) -> None:
        self.membership = None
        await self._stop_tasks()
        await super().session_ended(event)

    # --- Client actions -------------------------------------------------------------------------

    async def receive_json(self, content: Any, **kwargs) -> None:
        if self.membership is None:
            return
        action = content.get("action") if isinstance(content, dict) else None
        if action not in ACTIONS:
            await self.send_json({"type": "error", "message": "That request could not be read."})
            return
        if action == "cancel":
            await self._cancel_drafts()
            await self.send_json({"type": "drafts.cancelled"})
            return
        membership, conversation = await self._authorise(action, content.get("conversation_id"))
        if membership is None:
            await self._forbidden()
            return
        self.membership = membership
        if conversation is None:
            await self.send_json({"type": "error", "message": "No such conversation."})
            return
        if action == "watch":
            # The baseline is the state now: a message sent and delivered before the next poll
            # must still count as a change (the poll ignores a round begun on the old watch).
            _, signature = await self._poll_state(conversation.pk)
            self.watching, self.signature = conversation.pk, signature
            await self.send_json({"type": "watching", "conversation_id": conversation.pk})
        elif action == "lock":
            await self.send_json(await self._lock(membership, conversation))
        elif action == "unlock":
            await self._release(membership, conversation.pk)
            await self.send_json({"type": "unlock", "conversation_id": conversation.pk})
        else:
            kind = content.get("kind", "reply")
            if kind not in ("reply", "upsell"):
                await self.send_json({"type": "error", "message": "Drafts are replies or upsells."})
            elif self.drafting is not None and not self.drafting.done():
                await self.send_json({"type": "error", "message": "Drafts are already on their way."})
            else:
                self.drafting = asyncio.create_task(self._drafts(membership, conversation, kind))

    @database_call
    def _authorise(self, action: str, conversation_id: Any):
        """The membership as it is now and the conversation, in one thread hop: (None, None) when
        the membership is gone or lacks the action's permission, (membership, None) when the
        conversation is not one this member may see."""
        from django.http import Http404

        from apps.accounts.permissions import Perm, has_perm
        from apps.accounts.selectors import membership_refresh
        from apps.messaging.selectors import conversation_get_for_member

        perm = Perm.VIEW if action == "watch" else Perm.SEND_MESSAGES
        membership = membership_refresh(membership=self.membership)
        if membership is None or not has_perm(membership, perm):
            return None, None
        if isinstance(conversation_id, bool) or not isinstance(conversation_id, int | str):
            return membership, None
        try:
            conversation_id = int(conversation_id)
        except ValueError:
            return membership, None
        if not 0 < conversation_id < 2**63:
            return membership, None
        try:
            conversation = conversation_get_for_member(membership=membership, conversation_id=conversation_id)
        except Http404:
            return membership, None
        if not has_perm(membership, perm, creator=conversation.creator):
            return membership, None
        return membership, conversation

    @database_call
    def _lock(self, membership, conversation) -> dict:
        from apps.accounts.models import User
        from apps.messaging.services import conversation_lock

        taken, holder_id = conversation_lock(membership=membership, conversation=conversation)
        holder = ""
        if not taken and holder_id is not None:
            user = User.objects.filter(pk=holder_id).first()
            holder = user.get_short_name() if user else ""
        return {"type": "lock", "conversation_id": conversation.pk, "taken": taken, "holder": holder}

    @database_call
    def _release(self, membership, conversation_id: int) -> None:
        from apps.messaging.models import Conversation
        from apps.messaging.services import conversation_unlock

        conversation = Conversation.objects.filter(pk=conversation_id, agency_id=membership.agency_id).first()
        if conversation is not None:
            conversation_unlock(membership=membership, conversation=conversation)

    # --- Drafts ---------------------------------------------------------------------------------

    async def _cancel_drafts(self) -> None:
        if self.drafting is not None and not self.drafting.done():
            self.drafting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.drafting

    async def _drafts(self, membership, conversation, kind: str) -> None:
        from django.core.exceptions import PermissionDenied
        from django.http import Http404

        from apps.core.errors import ApplicationError

        await self.send_json({"type": "drafts.start", "kind": kind, "count": DRAFT_COUNT})
        buffers: dict[int, list[str]] = {}
        last_flush = 0.0

        async def flush() -> None:
            nonlocal last_flush
            for index, parts in buffers.items():
                if parts:
                    await self.send_json({"type": "draft.chunk", "index": index, "html": escape("".join(parts))})
                    parts.clear()
            last_flush = time.monotonic()

        stream = None
        try:
            from apps.messaging.drafts import drafts_stream

            stream = drafts_stream(membership=membership, conversation_id=conversation.pk, kind=kind, count=DRAFT_COUNT)
            async for event in stream:
                kind_of = getattr(event, "type", "")
                index = getattr(event, "index", 0)
                if kind_of == "chunk":
                    buffers.setdefault(index, []).append(getattr(event, "text", "") or "")
                    if time.monotonic() - last_flush >= FLUSH_SECONDS:
                        await flush()
                    continue
                await flush()
                if kind_of == "draft" and getattr(event, "draft", None) is not None:
                    html = render_to_string(
                        "messaging/inbox/draft_card.html",
                        {"draft": event.draft, "index": index, "currency": conversation.creator.currency},
                    )
                    await self.send_json({"type": "draft", "index": index, "html": html})
                elif kind_of == "error":
                    message = getattr(event, "message", "") or "This draft could not be written."
                    await self.send_json({"type": "draft.error", "index": index, "message": message})
                elif kind_of == "done":
                    break
        except ApplicationError as error:
            await flush()
            await self.send_json({"type": "draft.error", "index": None, "message": error.message})
        except (Http404, PermissionDenied):
            await self.send_json({"type": "draft.error", "index": None, "message": "No such conversation."})
        except Exception:  # the page must not wait forever for drafts that will not come
            logger.exception("inbox drafts stream failed for conversation %s", conversation.pk)
            await self.send_json({"type": "draft.error", "index": None, "message": "Drafts could not be written."})
        finally:
            if stream is not None and hasattr(stream, "aclose"):
                await stream.aclose()  # closing it cancels the upstream calls
        await self.send_json({"type": "drafts.done"})

    # --- Changes ----------------------------------------------------------------------------------

    async def outbox_batch(self, message: dict) -> None:
        """Several bus events for this group sent as one message (apps/core/outbox.py)."""
        for event in message.get("events") or []:
            await self.outbox_event(event)

    async def inbox_changed(self, event: dict) -> None:
        """The message a release before the bus sent (``{"type": "inbox.changed", "conversation_id"
        | "fan_id"}``): still understood while a rolling deploy has old and new processes on one
        channel layer. Remove once no process of that release runs."""
        await self.outbox_event({"kind": "inbox.changed", "agency_id": getattr(self.membership, "agency_id", None),
                                 "payload": event})  # fmt: skip

    async def outbox_event(self, event: dict) -> None:
        """An ``inbox.changed`` bus event on the agency's group (apps/messaging/events.py): a
        conversation (or a fan's purchases) changed somewhere in the agency. Note it, and check
        the burst against this member's visibility once it settles. Delivery is at least once; a
        repeat only re-checks ids already noted, and the coalesced frame names each id once."""
        if self.membership is None or event.get("kind") != "inbox.changed":
            return
        if event.get("agency_id") != self.membership.agency_id:
            return
        payload = event.get("payload") or {}
        if isinstance(payload.get("conversation_id"), int):
            self.pending_ids.add(payload["conversation_id"])
        elif isinstance(payload.get("fan_id"), int):
            self.pending_fans.add(payload["fan_id"])
        else:
            return
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush_changes())

    async def _flush_changes(self) -> None:
        await asyncio.sleep(COALESCE_SECONDS)
        ids, fans = set(self.pending_ids), set(self.pending_fans)
        self.pending_ids.clear()
        self.pending_fans.clear()
        membership, visible = await self._visible(ids, fans)
        if membership is None:
            await self._forbidden()
            return
        self.membership = membership
        if visible:
            await self.send_json({"type": "changed", "conversations": visible})

    @database_call
    def _visible(self, ids: set[int], fans: set[int]) -> tuple[Any, list[int]]:
        from django.db.models import Q

        from apps.accounts.permissions import Perm, has_perm
        from apps.accounts.selectors import creator_list, membership_refresh
        from apps.messaging.models import Conversation

        membership = membership_refresh(membership=self.membership)
        if membership is None or not has_perm(membership, Perm.VIEW):
            return None, []
        visible = (
            Conversation.objects.for_agency(membership.agency_id)
            .filter(creator__in=creator_list(membership=membership).values("pk"))
            .filter(Q(pk__in=ids) | Q(fan_id__in=fans))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        return membership, list(visible)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            watching = self.watching
            membership, signature = await self._poll_state(watching)
            if membership is None:
                await self._forbidden()
                return
            self.membership = membership
            if watching != self.watching:  # the page watched another conversation meanwhile,
                continue  # and `watch` took that one's baseline
            previous, self.signature = self.signature, signature
            if previous is None or previous == signature:
                continue
            changed = []
            if previous[0] != signature[0] and signature[0] is not None:
                changed.append(signature[0][0])
            if previous[1] != signature[1] and watching is not None and watching not in changed:
                changed.append(watching)
            if changed:
                await self.send_json({"type": "changed", "conversations": changed})

    @database_call
    def _poll_state(self, watching: int | None) -> tuple[Any, tuple]:
        """(membership, signature): the newest message among the visible conversations, and the
        watched conversation's lock, message count and latest statuses."""
        from apps.accounts.permissions import Perm, has_perm
        from apps.accounts.selectors import creator_list, membership_refresh
        from apps.messaging.models import Conversation, Message

        membership = membership_refresh(membership=self.membership)
        if membership is None or not has_perm(membership, Perm.VIEW):
            return None, ()
        visible = Conversation.objects.for_agency(membership.agency_id).filter(
            creator__in=creator_list(membership=membership).values("pk")
        )
        newest = (
            visible.filter(last_message_at__isnull=False)
            .order_by("-last_message_at", "-id")
            .values_list("pk", "last_message_at")
            .first()
        )
        watched = None
        if watching is not None:
            now = timezone.now()
            lock = visible.filter(pk=watching).values_list("locked_by_id", "locked_until", "message_count").first()
            if lock is not None:
                holder = lock[0] if lock[1] is not None and lock[1] > now else None
                statuses = tuple(
                    Message.objects.filter(conversation_id=watching)
                    .order_by("-created_at", "-id")
                    .values_list("pk", "status")[:HISTORY_WATCHED]
                )
                watched = (holder, lock[2], statuses)
        return membership, (newest, watched)
