"""Live studio generations over a websocket (htmx ws extension on the studio page).

The client sends {"action": "generate", "creator_id": …, "type": …, options…} or
{"action": "cancel"}. The server answers with HTML fragments for htmx out-of-band swaps:
streamed text (escaped; the first chunk at once, later ones batched into at most one frame per
FLUSH_SECONDS, flushed by a timer so no text waits for the next token), then
the rendered result or the error with the partial text kept. One generation at a time per
socket; cancel (or closing the tab) cancels the upstream call.

Connecting needs a live session that passed the agency's second factor when it requires one, and
a membership (apps/accounts/realtime.py); ending the session closes the socket at once.
Permissions hold for the whole life of the socket, not only at connect: every generate message
re-reads the membership and the creator (one written-out statement, ``member_and_creator``)
before anything runs, so a member removed or demoted to viewer mid-session gets the socket closed
with 4403, and a chatter unassigned from a creator gets "Choose one of your creators." Streamed
chunks of a generation already authorised are not re-checked.

A start costs one thread hop: the permission check, the options, the request-side safety check
and the prompt run together in it (``_authorise_and_prepare``); the generation row is written
while the upstream request is on its way (``generation_stream``). At most STARTS_AT_ONCE starts
per process run that hop at once, so a burst of starts queues instead of taking the GIL from the
streams already running. The hop has STARTS_AT_ONCE threads of its own: in the shared pool it
queued behind other generations' completions (a moderation call, the row saved, the result
rendered), and a member waited for the first word as long as the completions ahead of it took.
The end of a generation is one more hop (``generation_stream``'s completion), where the result
fragment is rendered too (``_render_result``), so no answer's parsing, safety policy or template
holds up other streams' chunks. A client that stops reading is disconnected once more than
MAX_PENDING_BYTES wait in the server's send buffer for it, instead of the buffer growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import json
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from apps.accounts.realtime import CLOSE_FORBIDDEN, MemberSocketMixin
from apps.core.asyncdb import database_call

logger = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4408  # the client stopped reading (the send buffer passed MAX_PENDING_BYTES)
FLUSH_SECONDS = 0.005
STARTS_AT_ONCE = 2  # generation starts per process in their thread hop at the same time
MAX_PENDING_BYTES = 1024 * 1024
# Threads made on first use; each keeps its database connection, as the shared pool's do.
_start_threads = ThreadPoolExecutor(max_workers=STARTS_AT_ONCE, thread_name_prefix="studio-start")
_admission: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _starts() -> asyncio.Semaphore:
    """This event loop's admission of generation starts (first come, first served)."""
    loop = asyncio.get_running_loop()
    semaphore = _admission.get(loop)
    if semaphore is None:
        semaphore = _admission[loop] = asyncio.Semaphore(STARTS_AT_ONCE)
    return semaphore


class StudioConsumer(MemberSocketMixin, AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.task: asyncio.Task | None = None
        self.membership = await self.member_connect()
        if self.membership is None:
            return
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.member_disconnect()
        await self._cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "{}")
        except ValueError:
            await self._send_error("That request could not be read.")
            return
        if not isinstance(message, dict):
            await self._send_error("That request could not be read.")
            return
        if message.get("action") == "cancel":
            await self._cancel()
            await self.send(text_data=_status_html("cancelled"))
            return
        if self.task is not None and not self.task.done():
            await self._send_error("A generation is already running: wait for it or cancel it.")
            return
        self.task = asyncio.create_task(self._generate(message))

    async def _cancel(self) -> None:
        if getattr(self, "task", None) is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _send_error(self, message: str, partial: str = "") -> None:
        html = render_to_string("studio/partials/error.html", {"message": message, "partial": partial})
        await self.send(text_data=html)

    @functools.partial(database_call, executor=_start_threads)
    def _authorise_and_prepare(self, creator_id, data: dict):
        """The member's current membership and the creator, re-read for this message, then the
        generation prepared (options, request-side safety check, prompt; not yet saved), in one
        thread hop.

        Answers (None, None, None) when the membership is gone or no longer allows generating,
        (membership, None, None) when the creator is not one this member may use, and
        (membership, creator, Prepared or ApplicationError) otherwise."""
        from apps.accounts.permissions import Perm, has_perm
        from apps.accounts.selectors import member_and_creator
        from apps.core.errors import ApplicationError
        from apps.studio.services import studio_prepare

        try:
            creator_id = int(creator_id)
        except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's 1e400 is an infinite float
            creator_id = None
        membership, creator = member_and_creator(membership=self.membership, creator_id=creator_id)
        if membership is None or not has_perm(membership, Perm.SEND_MESSAGES):
            return None, None, None
        if creator is None:
            return membership, None, None
        try:
            return membership, creator, studio_prepare(membership=membership, creator=creator, data=data, save=False)
        except ApplicationError as error:
            return membership, creator, error

    async def _generate(self, message: dict) -> None:
        """One generate message, start to end. Whatever fails unexpectedly is logged and answered
        with an error frame: the task runs on its own, and an exception left in it would end the
        generation with no word to the member."""
        try:
            await self._generate_now(message)
        except Exception:
            logger.exception("studio generation failed")
            with contextlib.suppress(Exception):  # the socket itself may be what failed
                await self._send_error("Something went wrong on our side. It has been logged; try again.")

    async def _generate_now(self, message: dict) -> None:
        from apps.core.errors import ApplicationError
        from apps.studio.services import OPTION_FIELDS, generation_stream

        data = {key: message[key] for key in OPTION_FIELDS if key in message and message[key] != ""}
        async with _starts():
            membership, creator, prepared = await self._authorise_and_prepare(message.get("creator_id"), data)
        if membership is None:
            await self._send_error("You no longer have access to generate for this agency.")
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Kept for the next message's re-read only; the assignment read with this message's creator
        # (``creator_assignment``, which has_perm would trust) is not carried over to it.
        vars(membership).pop("creator_assignment", None)
        self.membership = membership
        if creator is None:
            await self._send_error("Choose one of your creators.")
            return
        await self.send(text_data=_status_html("running"))
        if isinstance(prepared, ApplicationError):
            await self._send_error(prepared.message)
            return
        self._buffer: list[str] = []
        self._last_flush = 0.0  # the first chunk goes out at once
        self._flusher: asyncio.TimerHandle | None = None
        try:
            async for event in generation_stream(prepared=prepared, render=_render_result):
                if event["event"] == "content":
                    self._buffer.append(event["text"])
                    await self._maybe_flush()
                elif event["event"] == "complete":
                    await self._flush_now()
                    await self.send(text_data=event["html"])
                else:
                    await self._flush_now()
                    await self._send_error(event["message"], event.get("partial", ""))
        except _ClientTooSlow:
            await self.close(code=CLOSE_TOO_SLOW)
        finally:
            if self._flusher is not None:
                self._flusher.cancel()

    def _pending_bytes(self) -> int | None:
        """Bytes written for this client that its connection has not taken yet, when the server
        shows them (daphne: the Twisted transport's buffer); None elsewhere (tests' communicator)."""
        if getattr(self, "_transport_of", None) is not self.base_send:
            self._transport_of, self._transport = self.base_send, _server_transport(self.base_send)
        if self._transport is None:
            return None
        buffered = getattr(self._transport, "dataBuffer", b"")
        return len(buffered) + getattr(self._transport, "_tempDataLen", 0)

    async def send(self, text_data=None, bytes_data=None, close=False) -> None:
        pending = self._pending_bytes()
        if pending is not None and pending > MAX_PENDING_BYTES:
            raise _ClientTooSlow(pending)
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def _maybe_flush(self) -> None:
        """Send at once when the last frame left more than FLUSH_SECONDS ago; otherwise make sure
        a flush is scheduled for the end of the window, so no text waits for the next token."""
        wait = self._last_flush + FLUSH_SECONDS - time.monotonic()
        if wait <= 0:
            await self._flush_now()
        elif self._flusher is None:
            # A plain timer (no task, no sleep future): this runs for most chunks of a fast stream.
            self._flusher = asyncio.get_running_loop().call_later(wait, self._flush_due)

    def _flush_due(self) -> None:
        self._flusher = None
        if self._buffer:
            self._sending = asyncio.ensure_future(self._flush_now())
            self._sending.add_done_callback(self._flush_done)

    def _flush_done(self, sending: asyncio.Future) -> None:
        if not sending.cancelled() and isinstance(sending.exception(), _ClientTooSlow) and self.task is not None:
            self.task.cancel()  # the generation stops (and is marked cancelled); the socket closes
            self._closing = asyncio.ensure_future(self.close(code=CLOSE_TOO_SLOW))

    async def _flush_now(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if self._buffer:
            text = html.escape("".join(self._buffer))  # what django's escape() does, without its lazy-text check
            self._buffer.clear()
            self._last_flush = time.monotonic()
            await self.send(text_data=f'<span id="studio-stream" hx-swap-oob="beforeend">{text}</span>')


def _server_transport(send: Any) -> Any | None:
    """daphne's transport for this connection, found behind the ASGI ``send`` wrappers of the
    middleware stack, or None under another server. daphne hands the application
    ``partial(server.handle_reply, protocol)``; channels' session middleware keeps the send it
    wraps as ``real_send``, and a plain middleware (apps/monitoring/asgi.py) holds it in its
    wrapper's closure. A wrapper that holds more than one callable stops the search."""
    for _ in range(8):
        if isinstance(send, partial):
            return getattr(send.args[0], "transport", None) if send.args else None
        owner = getattr(send, "__self__", None)
        if callable(getattr(owner, "real_send", None)):
            send = owner.real_send
            continue
        inner = []
        for cell in getattr(send, "__closure__", None) or ():
            with contextlib.suppress(ValueError):  # an empty cell
                if callable(cell.cell_contents):
                    inner.append(cell.cell_contents)
        if len(inner) != 1:
            return None
        send = inner[0]
    return None


@functools.cache
def _status_html(status: str) -> str:
    """The status fragment, the same text for every socket: rendered once per process rather than
    on the event loop at every start."""
    return render_to_string("studio/partials/status.html", {"status": status})


def _render_result(generation) -> str:
    """The result fragment, rendered in the completion's thread hop (generation_stream's
    ``render``): a few milliseconds of template work that would otherwise hold the event loop
    while other streams have chunks to forward."""
    return render_to_string("studio/partials/result.html", {"generation": generation})


class _ClientTooSlow(Exception):
    """The client's send buffer passed MAX_PENDING_BYTES: it is not reading."""
