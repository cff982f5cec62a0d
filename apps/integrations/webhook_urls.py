"""The inbound webhook routes of the third-party OnlyFans/Fansly API, in a URLconf of their own.

apps/integrations/urls.py includes them like any route (names ``integrations:webhook-<platform>``);
``MACHINE_ENDPOINT_URLCONFS`` in settings also points the webhook path at this module, so
``apps.core.middleware.MachineEndpointMiddleware`` resolves a webhook against these two patterns
and skips the member-facing middleware (sessions, tenancy, two-factor, plan gates) and the walk
through every app's URLs (docs/integrations.md, docs/benchmarks.md "Integrations webhooks").
One route per platform keeps the URL's only variable the connection's public id.
"""

from django.urls import path

from apps.integrations import views

urlpatterns = [
    path(
        "integrations/webhooks/onlyfans/<uuid:connection_key>/",
        views.webhook,
        {"platform": "onlyfans"},
        name="webhook-onlyfans",
    ),
    path(
        "integrations/webhooks/fansly/<uuid:connection_key>/",
        views.webhook,
        {"platform": "fansly"},
        name="webhook-fansly",
    ),
]
