"""Websocket session metrics, as an ASGI middleware around the websocket stack (huntaze/asgi.py).

- ``ws.open`` (1, Count, {route}) when the consumer accepts the handshake;
- ``ws.session`` (duration in Seconds, {route, close_code}) when an accepted session ends: the
  code of the consumer's ``websocket.close`` (1000 when it gives none), or of the client's
  ``websocket.disconnect``, whichever comes first; 1011 when the consumer raised, 1006 when it
  ended (or was cancelled) without either;
- ``ws.rejected`` (1, Count, {route, close_code}) when the handshake is refused before an accept
  (no session, an origin from another site, a member without access: 4403), so refusals are
  visible without dragging the session durations towards zero.

The route is the websocket URL pattern that matches the path (``/ws/campaigns/<int:campaign_id>/``),
never the path itself; ``unmatched`` when none does. It sits outside the origin check and the
session middleware so that their refusals are counted too. The ASGI messages pass through
unchanged; the cost is a dictionary lookup per message.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from django.urls import URLPattern, URLResolver

from apps.core.metrics import emit

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

UNMATCHED = "unmatched"


def websocket_route(routes: Iterable[URLPattern | URLResolver], path: str, prefix: str = "") -> str:
    """The pattern among ``routes`` (channels' URLRouter entries, nested routers included)
    that matches ``path`` (without its leading ``/``), as ``/ws/…/<int:id>/``."""
    for route in routes:
        match = route.pattern.match(path)
        if not match:
            continue
        label = prefix + str(route.pattern).replace("^", "").rstrip("$")
        inner = getattr(route.callback, "routes", None)  # a nested URLRouter
        if inner is not None:
            return websocket_route(inner, match[0], label)
        return "/" + label
    return UNMATCHED


# The codes our consumers use, kept as they are; a client may close with any code from 1000 to
# 4999, so the rest are grouped and clients cannot create metric series at will.
_OWN_CLOSE_CODES = frozenset({403, 4403, 4408})  # the origin check, CLOSE_FORBIDDEN, CLOSE_TOO_SLOW


def close_code_label(code: object) -> str:
    """``close_code``'s dimension value: a standard code (1000 to 1015) or one of ours as itself,
    other application codes as ``app`` (3000 to 4999), anything else as ``other``."""
    try:
        number = int(code)
    except (TypeError, ValueError):
        return "other"
    if 1000 <= number <= 1015 or number in _OWN_CLOSE_CODES:
        return str(number)
    return "app" if 3000 <= number <= 4999 else "other"


class _Session:
    __slots__ = ("ended", "opened_at", "route")

    def __init__(self, route: str) -> None:
        self.route = route
        self.opened_at: float | None = None
        self.ended = False

    def open(self) -> None:
        if self.opened_at is None and not self.ended:
            self.opened_at = time.monotonic()
            emit("ws.open", 1, "Count", {"route": self.route})

    def end(self, code: object) -> None:
        code = close_code_label(code)
        if self.ended:
            return
        self.ended = True
        if self.opened_at is None:
            emit("ws.rejected", 1, "Count", {"route": self.route, "close_code": code})
        else:
            duration = time.monotonic() - self.opened_at
            emit("ws.session", duration, "Seconds", {"route": self.route, "close_code": code})


class WebsocketMetricsMiddleware:
    """Wraps an ASGI application; records ``websocket`` connections, passes anything else."""

    def __init__(self, app: Callable, *, routes: Iterable[URLPattern | URLResolver]) -> None:
        self.app = app
        self.routes = list(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        session = _Session(websocket_route(self.routes, path.lstrip("/")))

        async def receive_recorded() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                session.end(message.get("code", 1005))
            return message

        async def send_recorded(message: Message) -> None:
            kind = message["type"]
            if kind == "websocket.accept":
                session.open()
            elif kind == "websocket.close":
                session.end(message.get("code") or 1000)
            elif kind == "websocket.http.response.start":  # the denial-response extension
                session.end(message.get("status", 403))
            await send(message)

        try:
            await self.app(scope, receive_recorded, send_recorded)
        except Exception:
            session.end(1011)
            raise
        finally:
            session.end(1006)
