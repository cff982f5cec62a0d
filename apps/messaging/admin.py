"""Admin for the fan CRM and inbox.

Built for big tables (200k fans, millions of messages): foreign keys to fans, conversations,
creators and users are raw ids (never a select box of every fan), each changelist joins what it
shows (``list_select_related``) and skips the unfiltered full count.

What must not be lost or drift stays read-only: messages (the audit log: who sent what, from
which draft or template, how much was edited), purchases (they make up the fans' spend buckets),
the fans' spend and PPV counters (written only by ``services.purchase_record``), the inbox's
denormalised conversation columns, drafts and imports. Segments' filters are read-only here
because only ``segments.segment_filters_parse`` may validate them.
"""

from __future__ import annotations

from django.contrib import admin

from apps.messaging.models import (
    Conversation,
    Draft,
    Fan,
    FanImport,
    FanNote,
    FanRules,
    FanTag,
    Message,
    MessageTemplate,
    Purchase,
    Segment,
)


class BigTableAdmin(admin.ModelAdmin):
    show_full_result_count = False  # "x of y": one COUNT(*) over the whole table less
    list_per_page = 50


class ReadOnlyAdmin(BigTableAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(FanRules)
class FanRulesAdmin(admin.ModelAdmin):
    list_display = ["agency", "whale_min", "high_min", "mid_min", "low_min", "new_days", "at_risk_days", "churned_days"]
    list_select_related = ["agency"]
    search_fields = ["agency__name"]
    raw_id_fields = ["agency"]


@admin.register(Fan)
class FanAdmin(BigTableAdmin):
    list_display = [
        "id", "username", "display_name", "agency", "creator", "platform", "subscription_state", "total_spent",
        "ppv_bought", "ppv_offered", "last_active_at",
    ]  # fmt: skip
    list_filter = ["platform", "subscription_state", "renew_on"]
    search_fields = ["username", "display_name", "=platform_fan_id", "agency__name"]
    list_select_related = ["agency", "creator"]
    raw_id_fields = ["agency", "creator"]
    readonly_fields = [
        "spent_subscriptions", "spent_tips", "spent_ppv", "spent_messages", "total_spent", "ppv_offered",
        "ppv_bought", "last_purchase_at", "created_at", "updated_at",
    ]  # fmt: skip


@admin.register(FanTag)
class FanTagAdmin(BigTableAdmin):
    list_display = ["name", "fan", "creator", "agency"]
    search_fields = ["name", "fan__username"]
    list_select_related = ["fan", "creator", "agency"]
    raw_id_fields = ["agency", "creator", "fan"]


@admin.register(FanNote)
class FanNoteAdmin(BigTableAdmin):
    list_display = ["__str__", "fan", "author", "agency", "created_at"]
    search_fields = ["text", "fan__username"]
    list_select_related = ["fan", "author", "agency"]
    raw_id_fields = ["agency", "fan", "author"]
    date_hierarchy = "created_at"


@admin.register(Conversation)
class ConversationAdmin(BigTableAdmin):
    list_display = [
        "id", "fan", "creator", "agency", "needs_reply", "waiting_since", "unread_count", "message_count",
        "last_message_at",
    ]  # fmt: skip
    list_filter = ["needs_reply"]
    search_fields = ["fan__username", "fan__display_name", "agency__name"]
    list_select_related = ["fan", "creator", "agency"]
    raw_id_fields = ["agency", "creator", "fan", "locked_by"]
    readonly_fields = [
        "needs_reply", "waiting_since", "unread_count", "fan_value", "last_message_at", "last_message_preview",
        "last_message_direction", "message_count", "created_at",
    ]  # fmt: skip


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    """The audit log: read-only, never deleted."""

    list_display = [
        "id", "agency", "creator", "fan", "direction", "source", "status", "sent_by_email", "edit_ratio",
        "created_at",
    ]  # fmt: skip
    list_filter = ["direction", "source", "status"]
    search_fields = ["=idempotency_key", "=platform_message_id", "sent_by_email", "fan__username", "agency__name"]
    list_select_related = ["agency", "creator", "fan"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [field.name for field in Message._meta.fields]


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ["id", "agency", "creator", "fan", "kind", "amount", "currency", "purchased_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["=platform_purchase_id", "fan__username", "agency__name"]
    list_select_related = ["agency", "creator", "fan"]
    date_hierarchy = "purchased_at"

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [field.name for field in Purchase._meta.fields]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "agency", "creator", "use_count", "updated_at"]
    list_filter = ["category"]
    search_fields = ["name", "text", "agency__name"]
    list_select_related = ["agency", "creator"]
    raw_id_fields = ["agency", "creator", "created_by"]
    readonly_fields = ["use_count", "created_at", "updated_at"]


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "agency", "creator", "created_by", "updated_at"]
    search_fields = ["name", "agency__name"]
    list_select_related = ["agency", "creator", "created_by"]
    raw_id_fields = ["agency", "creator", "created_by"]
    readonly_fields = ["filters", "created_at", "updated_at"]


@admin.register(Draft)
class DraftAdmin(ReadOnlyAdmin):
    list_display = ["id", "agency", "creator", "conversation", "kind", "status", "score", "provider", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["agency__name", "conversation__fan__username"]
    list_select_related = ["agency", "creator", "conversation__fan", "conversation__creator"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [field.name for field in Draft._meta.fields]


@admin.register(FanImport)
class FanImportAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "filename",
        "kind",
        "status",
        "agency",
        "creator",
        "processed_rows",
        "total_rows",
        "created_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["filename", "agency__name"]
    list_select_related = ["agency", "creator"]
    exclude = ["content"]  # the uploaded file, possibly megabytes

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [field.name for field in FanImport._meta.fields if field.name != "content"]
