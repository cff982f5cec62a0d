"""ASGI entry point: HTTP through Django, websockets through Channels (served by daphne)."""

from __future__ import annotations

import importlib
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huntaze.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

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

# Modules the first AI request would otherwise import inside the event loop: the SDKs take about
# 1.5 s, during which every open websocket of this process would stall.
WARM_IMPORTS = (
    "apps.ai.providers.openai_chat",
    "apps.ai.providers.anthropic_messages",
    "apps.ai.providers.builtin",
    "apps.studio.services",
    "apps.safety",
)
for module in WARM_IMPORTS:
    importlib.import_module(module)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Outermost, so refusals by the origin check and the consumers are counted too.
        "websocket": WebsocketMetricsMiddleware(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
            routes=websocket_urlpatterns,
        ),
    }
)
