"""Integrations pages, under /integrations/, and the inbound webhooks of third-party APIs."""

from django.urls import path

from apps.integrations import crm_views, publishing_views, views, webhook_urls

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
    path("integrations/connections/<int:connection_id>/sync/", views.sync_history, name="sync-history"),
    path("integrations/connections/<int:connection_id>/sync/start/", views.sync_start, name="sync-start"),
    # Inbound webhooks of the third-party API (webhook_urls.py: also served on their own fast path).
    *webhook_urls.urlpatterns,
    # CRM webhooks (apps/integrations/crm_views.py).
    path("integrations/crm/", crm_views.crm_list, name="crm-list"),
    path("integrations/crm/new/", crm_views.crm_create, name="crm-create"),
    path("integrations/crm/<int:crm_id>/", crm_views.crm_detail, name="crm-detail"),
    path("integrations/crm/<int:crm_id>/rotate/", crm_views.crm_rotate, name="crm-rotate"),
    path("integrations/crm/<int:crm_id>/delete/", crm_views.crm_delete, name="crm-delete"),
    path("integrations/crm/deliveries/<int:crm_delivery_id>/replay/", crm_views.crm_replay, name="crm-replay"),
    path("integrations/crm/<uuid:crm_key>/inbound/", crm_views.crm_inbound, name="crm-inbound"),
    # Publishing (apps/integrations/publishing_views.py).
    path("integrations/calendar/", publishing_views.post_calendar, name="calendar"),
    path("integrations/posts/new/", publishing_views.post_new, name="post-new"),
    path("integrations/posts/<int:scheduled_post_id>/", publishing_views.post_detail, name="post"),
    path("integrations/posts/<int:scheduled_post_id>/cancel/", publishing_views.post_cancel, name="post-cancel"),
    path("integrations/posts/<int:scheduled_post_id>/retry/", publishing_views.post_retry, name="post-retry"),
]
