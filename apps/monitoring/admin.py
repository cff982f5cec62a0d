"""Admin for monitoring: SLOs editable; alerts and the webhook delivery log read-only (they are
records of what happened), and so are the recorded metric samples (what the sinks rolled up);
webhooks without their secret (it is shown once, at creation, on
/monitoring/webhooks/, and stays encrypted)."""

from django.contrib import admin

from apps.monitoring import cost_admin  # noqa: F401 (Budget's admin)
from apps.monitoring.models import SLO, Alert, AlertWebhook, MetricSample, WebhookAttempt


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SLO)
class SLOAdmin(admin.ModelAdmin):
    list_display = ("name", "indicator", "objective", "window_days", "threshold_ms", "enabled")
    list_filter = ("indicator", "window_days", "enabled")
    search_fields = ("name",)


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("title", "kind", "severity", "state", "agency", "fired_at", "resolved_at")
    list_filter = ("kind", "severity", "state")
    search_fields = ("title", "key")
    list_select_related = ("agency",)
    date_hierarchy = "fired_at"


@admin.register(AlertWebhook)
class AlertWebhookAdmin(admin.ModelAdmin):
    list_display = ("url", "agency", "description", "enabled", "created_at")
    list_filter = ("enabled",)
    list_select_related = ("agency",)
    fields = ("url", "agency", "description", "enabled")
    raw_id_fields = ("agency",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # added on /monitoring/webhooks/, which generates the secret and shows it once


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "webhook", "event", "attempt", "status_code", "delivered", "error", "next_retry_at")
    list_filter = ("delivered", "event")
    list_select_related = ("webhook",)
    raw_id_fields = ("webhook", "alert")


@admin.register(MetricSample)
class MetricSampleAdmin(ReadOnlyAdmin):
    list_display = ("name", "resolution", "start", "dims_key", "count", "sum", "min", "max", "unit")
    list_filter = ("resolution", "name")
    search_fields = ("name", "dims_key")
    date_hierarchy = "start"
    show_full_result_count = False  # a busy deployment holds millions of rows
