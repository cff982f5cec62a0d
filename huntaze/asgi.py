"""ASGI entry point: HTTP through Django, websockets through Channels (served by daphne)."""

from __future__ import annotations

import contextvars
import gc
import importlib
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huntaze.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddleware  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.template.loader import get_template  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from apps.monitoring.asgi import WebsocketMetricsMiddleware  # noqa: E402
from huntaze.routing import websocket_urlpatterns  # noqa: E402


def _leave_request_bodies_to_django() -> None:
    """Twisted, under daphne, parses every multipart POST body before the request reaches Django
    (which parses it again when it needs it), and answers a body it cannot parse (a boundary with
    no parts, say) with an empty 400 and a dropped connection: no JSON error, no request id, no log
    line. Its own parsing is switched off, so Django reads each body once and answers in the API's
    error shape. Other ASGI servers do not parse bodies; without daphne there is nothing to change.
    """
    try:
        from daphne import http_protocol
    except ImportError:
        return
    if getattr(http_protocol.WebRequest, "leaves_bodies_to_django", False):
        return

    class WebRequest(http_protocol.WebRequest):
        leaves_bodies_to_django = True

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    http_protocol.WebRequest = WebRequest  # the name HTTPFactory.buildProtocol uses for each connection


_leave_request_bodies_to_django()


def _send_at_once() -> None:
    """Twisted, under daphne, never writes when asked: it buffers the bytes, asks the event loop
    to watch the socket for writability (a system call), and sends on the loop's next turn before
    un-watching it (another). A streamed answer is one small websocket frame per token, so that is
    two extra system calls and a whole loop turn of delay per chunk, and at a hundred streams a
    turn is milliseconds. The server's TCP connections now send at once when nothing is waiting
    before them, as asyncio's own transports do, and buffer only what the kernel did not take (a
    slow reader, whose buffer the studio still bounds). A lost or aborted connection is left to
    the usual path, which reports it, as is a connection with a pull producer (Twisted asks it for
    more only after a buffered send). TLS started on a plain connection (``startTLS``) keeps
    Twisted's way; behind daphne's own ``ssl:`` endpoint the encrypted bytes are sent at once too,
    in order. Other servers have nothing to change."""
    try:
        from twisted.internet import tcp
    except ImportError:
        return
    if getattr(tcp.Port.transport, "sends_at_once", False):
        return

    class Server(tcp.Server):
        sends_at_once = True

        def write(self, data: bytes) -> None:
            if (
                data
                and not self.TLS
                and self.connected
                and not self.disconnecting
                and not self._writeDisconnected
                and not self._aborting
                and (self.producer is None or self.streamingProducer)
                and not self._tempDataBuffer
                and self.offset >= len(self.dataBuffer)
                and isinstance(data, bytes)
            ):
                sent = self.writeSomeData(data)
                if isinstance(sent, int):
                    if sent == len(data):
                        return
                    data = data[sent:]
            super().write(data)

    tcp.Port.transport = Server  # the class a listening port builds each accepted connection from


_send_at_once()

# Modules the first AI request would otherwise import inside the event loop: the SDKs take about
# 1.5 s, during which every open websocket of this process would stall. The URL configuration
# (settings.ROOT_URLCONF, imported after these) is the same for the first HTTP request: every view
# and the API, NumPy and SciPy among them, about 1.7 s.
WARM_IMPORTS = (
    "apps.ai.providers.openai_chat",
    "apps.ai.providers.anthropic_messages",
    "apps.ai.providers.builtin",
    "apps.studio.services",
    "apps.safety",
)
for module in (*WARM_IMPORTS, settings.ROOT_URLCONF):
    importlib.import_module(module)
# The template engine (its start imports every app's template tags: about 0.27 s) and the
# fragments websocket consumers render on the event loop: the first notification toast otherwise
# built the engine there, and every socket and event stream of the process waited about half a
# second (bench/workflows.py, commit-to-client latency).
WARM_TEMPLATES = (
    "notifications/partials/toast.html",
    "campaigns/progress.html",
    "messaging/inbox/draft_card.html",
    "studio/partials/error.html",
    "studio/partials/status.html",
    "studio/partials/result.html",
)


def _warm_up() -> None:
    # The reverse table for the default language, built once here instead of by each of the first
    # threads that render a link at the same time (another language's is built on first use, ~0.05 s).
    get_resolver().reverse_dict  # noqa: B018
    for name in WARM_TEMPLATES:
        get_template(name)


# In a context of its own: building the reverse table sets a flag in each URL resolver's
# ``asgiref.local.Local`` (96 of them), and a Local set in the server's own context would be in
# every connection's context from then on, where asgiref copies each of them back and forth at
# every thread hop (``sync_to_async``): about 36 us a hop for the 96, several hops a generation.
contextvars.Context().run(_warm_up)

# Everything imported and built above lives as long as the process: out of the garbage
# collector's reach, a full collection walks only what was made since. Before, each full
# collection walked the whole heap (Django, both AI SDKs, NumPy, SciPy) and paused the process,
# every websocket in it, for 230-390 ms, several times a minute under load; after, 33-67 ms
# (bench/streaming.py, docs/benchmarks.md 2026-12-04). Collection itself is unchanged.
gc.freeze()


class SocketSessionMiddleware(SessionMiddleware):
    """Channels' session middleware for websockets, without its ``send`` wrapper.

    The wrapper saves a modified session when a response starts (``http.response.start``), which a
    websocket never sends; for every message it still reads the session's ``modified`` and
    ``is_empty()`` through a ``LazyObject``, whose attribute look-up raises and catches an
    AttributeError each time: about 3 us a frame, every streamed frame. The session
    itself (``scope["session"]``, the login behind ``scope["user"]``) is resolved as before."""

    async def __call__(self, scope, receive, send):
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Outermost, so refusals by the origin check and the consumers are counted too.
        "websocket": WebsocketMetricsMiddleware(
            AllowedHostsOriginValidator(
                CookieMiddleware(SocketSessionMiddleware(AuthMiddleware(URLRouter(websocket_urlpatterns))))
            ),
            routes=websocket_urlpatterns,
        ),
    }
)
