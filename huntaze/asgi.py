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

from huntaze.routing import websocket_urlpatterns  # noqa: E402

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
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
