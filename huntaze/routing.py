"""Websocket routes. Each consumer authorises in ``connect()``."""

from django.urls import path

from apps.core.consumers import NotificationConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi(), name="ws-notifications"),
]
