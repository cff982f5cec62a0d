from django.contrib import admin
from django.db import models

from apps.ai.models import AIRequestLog, ProviderCredential


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(admin.ModelAdmin):
    """The key is never shown: only a hint of its last characters."""

    list_display = ["label", "agency", "kind", "key_hint", "priority", "is_enabled", "last_test_ok", "last_tested_at"]
    list_filter = ["kind", "is_enabled", "agency"]
    search_fields = ["label", "agency__name"]
    list_select_related = ["agency"]
    exclude = ["api_key"]
    readonly_fields = ["key_hint", "last_tested_at", "last_test_ok", "last_test_message", "last_test_latency_ms"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(AIRequestLog)
class AIRequestLogAdmin(admin.ModelAdmin):
    list_display = [
        "created_at", "agency", "feature", "provider", "model", "input_tokens", "output_tokens", "cost_usd",
        "latency_ms", "cache_hit", "coalesced", "fallback_used", "degraded", "error_kind",
    ]  # fmt: skip
    list_filter = ["provider", "model", "feature", "cache_hit", "degraded", "fallback_used", "error_kind", "agency"]
    search_fields = ["feature", "model", "request_id", "agency__name"]
    list_select_related = ["agency"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
