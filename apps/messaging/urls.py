"""Pages of the fan CRM and inbox; each area's routes live beside its views."""

from apps.messaging.views import audit, fans, inbox, segments, templates

app_name = "messaging"

urlpatterns = [
    *inbox.urlpatterns,
    *fans.urlpatterns,
    *segments.urlpatterns,
    *templates.urlpatterns,
    *audit.urlpatterns,
]
