"""Integrations pages, under /integrations/, and the inbound webhooks of third-party APIs."""

from django.urls import path

from apps.integrations import views

app_name = "integrations"

urlpatterns = [
    path("integrations/", views.overview, name="overview"),
    path("integrations/creators/<int:creator_id>/", views.creator_connections, name="creator"),
    path("integrations/creators/<int:creator_id>/connect/", views.oauth_connect, name="connect"),
    path("integrations/creators/<int:creator_id>/api/", views.api_connect, name="api-connect"),
    path("integrations/oauth/callback/", views.oauth_callback, name="oauth-callback"),
    path("integrations/connections/<int:connection_id>/", views.connection_detail, name="connection"),
    path(
        "integrations/connections/<int:connection_id>/disconnect/",
        views.connection_disconnect,
        name="disconnect",
    ),
    # One route per platform keeps the URL's only variable the connection's public id.
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
