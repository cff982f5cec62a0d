"""Admin for integrations. Secrets (tokens, API keys, webhook secrets) are never shown or edited
here: the fields are left out of every page, and connections are changed through the product's
pages (connect, disconnect), which keep the audit trail."""

from django.contrib import admin
from django.db import models

from apps.integrations.models import (
    Connection,
    ConnectionEvent,
    CRMConnection,
    CRMDelivery,
    CRMInboundEvent,
    ScheduledPost,
    SyncRun,
    WebhookEvent,
)

SECRETS = ("access_token", "refresh_token", "api_key", "webhook_secret")


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ("agency", "creator", "platform", "status", "is_simulated", "last_sync_at", "access_expires_at")
    list_filter = ("platform", "status", "is_simulated")
    search_fields = ("creator__display_name", "agency__name", "external_account_id", "api_account_id")
    list_select_related = ("agency", "creator")
    raw_id_fields = ("agency", "creator", "connected_by")
    exclude = SECRETS
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ("public_id",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConnectionEvent)
class ConnectionEventAdmin(admin.ModelAdmin):
    list_display = ("agency", "connection", "kind", "actor", "created_at")
    list_filter = ("kind",)
    search_fields = ("connection__creator__display_name", "agency__name", "detail")
    list_select_related = ("agency", "connection__creator", "actor")
    raw_id_fields = ("agency", "connection", "actor")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("agency", "connection", "type", "event_id", "status", "received_at", "processed_at")
    list_filter = ("status", "type")
    search_fields = ("event_id", "type", "agency__name")
    list_select_related = ("agency", "connection__creator")
    raw_id_fields = ("agency", "connection")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    """Read-only: runs are written by apps/integrations/sync.py (cursors included)."""

    list_display = ("agency", "connection", "status", "trigger", "fans_synced", "messages_synced",
                    "transactions_synced", "started_at", "finished_at")  # fmt: skip
    list_filter = ("status", "trigger")
    search_fields = ("connection__creator__display_name", "agency__name", "error")
    list_select_related = ("agency", "connection__creator")
    raw_id_fields = ("agency", "connection", "started_by")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ScheduledPost)
class ScheduledPostAdmin(admin.ModelAdmin):
    """Read-only: posts are scheduled, cancelled and retried on the calendar (apps/integrations/publishing.py)."""

    list_display = ("agency", "creator", "platform", "status", "scheduled_at", "attempts", "published_at")
    list_filter = ("status", "platform")
    search_fields = ("creator__display_name", "agency__name", "platform_post_id", "title")
    list_select_related = ("agency", "creator")
    raw_id_fields = ("agency", "creator", "connection", "generation", "created_by")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CRMConnection)
class CRMConnectionAdmin(admin.ModelAdmin):
    """The signing secret is never shown; connections are changed on the product's CRM pages."""

    list_display = ("agency", "name", "target_url", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "agency__name", "target_url")
    list_select_related = ("agency",)
    raw_id_fields = ("agency", "created_by")
    exclude = ("signing_secret",)
    readonly_fields = ("public_id",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CRMDelivery)
class CRMDeliveryAdmin(admin.ModelAdmin):
    list_display = ("agency", "crm", "kind", "event_id", "status", "attempts", "response_code", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("agency__name", "crm__name", "last_error")
    list_select_related = ("agency", "crm")
    raw_id_fields = ("agency", "crm")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CRMInboundEvent)
class CRMInboundEventAdmin(admin.ModelAdmin):
    list_display = ("agency", "crm", "type", "event_id", "status", "received_at", "processed_at")
    list_filter = ("status", "type")
    search_fields = ("event_id", "type", "agency__name")
    list_select_related = ("agency", "crm")
    raw_id_fields = ("agency", "crm")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
