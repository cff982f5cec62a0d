"""Admin for optimization, read-mostly: performance series, offers, anomalies and recommendations
are records of what happened (the pages, imports and the nightly run write them); settings are
editable. Nothing here is secret; raw foreign keys keep the change pages fast on large agencies."""

from django.contrib import admin

from apps.optimization.models import (
    Anomaly,
    DailyPerformance,
    HourlyPerformance,
    Offer,
    OptimizationSettings,
    Recommendation,
    ServiceAnomaly,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    list_select_related = ("agency", "creator")
    raw_id_fields = ("agency", "creator")
    list_per_page = 50

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DailyPerformance)
class DailyPerformanceAdmin(ReadOnlyAdmin):
    list_display = ("agency", "creator", "day", "revenue_subscriptions", "revenue_tips", "revenue_ppv",
                    "revenue_messages", "new_subscribers", "posts", "engagement", "source")  # fmt: skip
    list_filter = ("source",)
    search_fields = ("creator__display_name", "agency__name")
    date_hierarchy = "day"


@admin.register(HourlyPerformance)
class HourlyPerformanceAdmin(ReadOnlyAdmin):
    list_display = ("agency", "creator", "hour", "revenue", "engagement", "messages_sent", "message_replies", "source")
    list_filter = ("source",)
    search_fields = ("creator__display_name", "agency__name")
    date_hierarchy = "hour"


@admin.register(Offer)
class OfferAdmin(ReadOnlyAdmin):
    list_display = ("agency", "creator", "sent_at", "price", "currency", "recipients", "unlocks", "revenue", "source",
                    "external_id")  # fmt: skip
    list_filter = ("source", "currency")
    search_fields = ("creator__display_name", "agency__name", "external_id")
    date_hierarchy = "sent_at"
    raw_id_fields = ("agency", "creator", "campaign")


@admin.register(OptimizationSettings)
class OptimizationSettingsAdmin(admin.ModelAdmin):
    list_display = ("agency", "creator", "strategy", "risk", "sensitivity", "explore_prices", "updated_at")
    list_filter = ("strategy", "risk", "sensitivity", "explore_prices")
    list_select_related = ("agency", "creator")
    search_fields = ("agency__name", "creator__display_name")
    raw_id_fields = ("agency", "creator", "updated_by")


@admin.register(Anomaly)
class AnomalyAdmin(ReadOnlyAdmin):
    list_display = ("agency", "creator", "metric", "granularity", "at", "value", "expected_low", "expected_high",
                    "severity", "status")  # fmt: skip
    list_filter = ("severity", "status", "granularity", "metric")
    search_fields = ("creator__display_name", "agency__name", "metric")
    date_hierarchy = "at"
    raw_id_fields = ("agency", "creator", "acknowledged_by")


@admin.register(ServiceAnomaly)
class ServiceAnomalyAdmin(ReadOnlyAdmin):
    list_display = ("at", "agency", "metric", "value", "expected_low", "expected_high", "severity", "alert_key")
    list_filter = ("severity", "metric")
    search_fields = ("agency__name", "metric")
    date_hierarchy = "at"
    list_select_related = ("agency",)
    raw_id_fields = ("agency",)


@admin.register(Recommendation)
class RecommendationAdmin(ReadOnlyAdmin):
    list_display = (
        "headline",
        "agency",
        "creator",
        "kind",
        "status",
        "confidence",
        "outcome",
        "run_date",
        "decided_at",
    )
    list_filter = ("kind", "status", "outcome", "strategy", "risk")
    search_fields = ("headline", "creator__display_name", "agency__name")
    date_hierarchy = "created_at"
    raw_id_fields = ("agency", "creator", "anomaly", "decided_by")
