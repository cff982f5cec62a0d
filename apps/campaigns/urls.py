"""Pages of campaigns (views.py holds them and their routes)."""

from apps.campaigns.views import urlpatterns

app_name = "campaigns"

__all__ = ["app_name", "urlpatterns"]
