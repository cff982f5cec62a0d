"""Websocket routes. Each consumer authorises in ``connect()``."""

from django.urls import path

from apps.campaigns.consumers import CampaignProgressConsumer
from apps.messaging.consumers import InboxConsumer
from apps.notifications.consumers import NotificationConsumer
from apps.studio.consumers import StudioConsumer
from apps.workflows.consumers import WorkflowRunConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi(), name="ws-notifications"),
    path("ws/studio/", StudioConsumer.as_asgi(), name="ws-studio"),
    path("ws/inbox/", InboxConsumer.as_asgi(), name="ws-inbox"),
    path("ws/campaigns/<int:campaign_id>/", CampaignProgressConsumer.as_asgi(), name="ws-campaign-progress"),
    path("ws/workflows/runs/<int:run_id>/", WorkflowRunConsumer.as_asgi(), name="ws-workflow-run"),
]
