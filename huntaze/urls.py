from django.contrib import admin
from django.urls import include, path

from apps.accounts import security_views
from apps.monitoring import prometheus
from huntaze import views
from huntaze.api import api

admin.site.site_header = "Huntaze administration"
admin.site.site_title = "Huntaze admin"
admin.site.login = security_views.admin_login  # staff sign in with the product's login (second factor)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("apps.accounts.urls")),
    path("", include("apps.ai.urls")),
    path("", include("apps.studio.urls")),
    path("", include("apps.messaging.urls")),
    path("", include("apps.campaigns.urls")),
    path("", include("apps.notifications.urls")),
    path("", include("apps.monitoring.urls")),
    path("", include("apps.optimization.urls")),
    path("", include("apps.billing.urls")),
    path("", include("apps.workflows.urls")),
    path("", include("apps.integrations.urls")),
    # The home dashboard gathers every app, so it lives in the project package; it keeps the
    # name core:dashboard that LOGIN_REDIRECT_URL, templates and redirects use.
    path("", include(([path("", views.dashboard, name="dashboard")], "core"))),
    path("favicon.ico", views.favicon, name="favicon"),
    # Prometheus exposition, bearer-token or network protected (docs/metrics-sinks.md).
    path("metrics", prometheus.metrics_view, name="metrics"),
]
