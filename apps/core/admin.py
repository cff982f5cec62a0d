from django.contrib import admin

from apps.core.models import SharedKey


@admin.register(SharedKey)
class SharedKeyAdmin(admin.ModelAdmin):
    """Rate-limit windows and breaker records of the embedded default (Redis holds them otherwise)."""

    list_display = ["key", "count", "expires_at"]
    search_fields = ["key"]
    list_filter = ["expires_at"]
