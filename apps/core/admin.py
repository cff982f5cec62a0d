from django.contrib import admin

from apps.core.models import Notification, SharedKey


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "user", "agency", "level", "created_at", "read_at"]
    list_filter = ["agency", "level"]
    search_fields = ["title", "user__email"]
    list_select_related = ["user", "agency"]


@admin.register(SharedKey)
class SharedKeyAdmin(admin.ModelAdmin):
    """Rate-limit windows and breaker records of the embedded default (Redis holds them otherwise)."""

    list_display = ["key", "count", "expires_at"]
    search_fields = ["key"]
    list_filter = ["expires_at"]
