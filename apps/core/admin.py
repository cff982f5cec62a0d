from django.contrib import admin

from apps.core.models import OutboxEvent, SharedKey
from apps.core.outbox import outbox_status


@admin.register(SharedKey)
class SharedKeyAdmin(admin.ModelAdmin):
    """Rate-limit windows and breaker records of the embedded default (Redis holds them otherwise)."""

    list_display = ["key", "count", "expires_at"]
    search_fields = ["key"]
    list_filter = ["expires_at"]


class DispatchedFilter(admin.SimpleListFilter):
    title = "dispatched"
    parameter_name = "dispatched"

    def lookups(self, request, model_admin):
        return [("yes", "Dispatched"), ("no", "Waiting")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(dispatched_at__isnull=self.value() == "no")
        return queryset


class FailingFilter(admin.SimpleListFilter):
    title = "failures"
    parameter_name = "failing"

    def lookups(self, request, model_admin):
        return [("yes", "Failed at least once")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(last_error="")
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    """The event outbox (apps/core/outbox.py): what was published, when it went out, what failed.

    Rows are written by ``events.publish`` only, so the admin reads and never edits them; the
    action clears the backoff of failed events so the next sweep sends them again. The page's
    header shows the lag: the age of the oldest event not dispatched yet.
    """

    change_list_template = "admin/core/outboxevent/change_list.html"
    list_display = ["id", "kind", "agency_id", "user_id", "created_at", "dispatched_at", "attempts", "short_error"]
    list_filter = [DispatchedFilter, FailingFilter, "kind", "created_at"]
    search_fields = ["kind", "key"]
    ordering = ["-id"]
    show_full_result_count = False
    actions = ["dispatch_again"]

    @admin.display(description="last error")
    def short_error(self, event: OutboxEvent) -> str:
        return event.last_error[:120]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Dispatch again at the next sweep (clears the backoff)")
    def dispatch_again(self, request, queryset) -> None:
        count = queryset.filter(dispatched_at__isnull=True).update(claimed_until=None)
        self.message_user(request, f"{count} undispatched event(s) will be sent at the next sweep.")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "outbox": outbox_status(all_agencies=True)}
        return super().changelist_view(request, extra_context=extra_context)
