"""Admin for campaigns and the agencies' campaign settings: read-only, for support staff to see
what a campaign was, where it stands and how its deliveries went.

Read-only because every write goes through services.py: creating and editing validate the
audience, the text and the price, and every change of status moves the campaign's deliveries
with it (a status edited here would leave them sending, or held for ever). There is no "cancel"
action either: ``campaign_cancel`` acts for a member of the campaign's agency, and staff are not
one; cancelling from here needs a staff service of its own (as delivery's
``delivery_requeue_for_staff``). Deleting is refused too: the deliveries would outlive their
campaign. The approval size is set by the agency's owner on the campaign settings page.

The numbers of deliveries on the change page are counted by ``services.campaign_stats``, as on
the campaign's own page; the list shows only columns of the campaign row (no per-row count).
"""

from __future__ import annotations

from django.contrib import admin

from apps.campaigns.models import Automation, AutomationRun, Campaign, CampaignPersonalText, CampaignSettings
from apps.campaigns.services import CampaignStats, campaign_stats


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ["name", "agency", "creator", "status", "targeted", "send_at", "started_at", "created_by"]
    list_filter = ["status", "agency"]
    search_fields = ["name"]
    list_select_related = ["agency", "creator", "created_by"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["name", "agency", "creator", "status", "last_error"]}),
        (
            "Message and audience",
            {
                "fields": [
                    "mode", "text", "ppv_price", "media", "segment", "fan_ids", "exclude_messaged_within_hours",
                    "exclude_no_spend_days", "exclude_bought_offer",
                ]
            },
        ),
        (
            "Deliveries",
            {
                "fields": [
                    "targeted", "excluded", "stats_queued", "stats_retrying", "stats_sent", "stats_dead",
                    "stats_rejected", "stats_cancelled", "stats_sent_last_minute", "stats_progress",
                ]
            },
        ),
        (
            "AI personalisation",
            {
                "fields": [
                    "personalize_status", "personalize_total", "personalize_done", "personalize_fallbacks",
                    "personalize_error", "personalize_at", "personalize_run",
                ]
            },
        ),
        (
            "History",
            {
                "fields": [
                    "created_by", "created_at", "approved_by", "approved_at", "send_at", "repeat",
                    "repeat_until", "repeat_of", "started_at", "finished_at", "updated_at",
                ]
            },
        ),
    ]  # fmt: skip
    readonly_fields = [
        "stats_queued", "stats_retrying", "stats_sent", "stats_dead", "stats_rejected", "stats_cancelled",
        "stats_sent_last_minute", "stats_progress",
    ]  # fmt: skip

    def get_queryset(self, request):
        # The change page shows these (the list joins a subset of them); one query with the row.
        return (
            super()
            .get_queryset(request)
            .select_related("agency", "creator", "segment", "created_by", "approved_by", "repeat_of")
        )

    @staticmethod
    def _stats(obj: Campaign) -> CampaignStats:
        """The campaign's numbers, counted once per page (each field below reads them)."""
        if not hasattr(obj, "_admin_stats"):
            obj._admin_stats = campaign_stats(campaigns=[obj])[obj.pk]
        return obj._admin_stats

    @admin.display(description="Queued (pending, held or being sent)")
    def stats_queued(self, obj: Campaign) -> int:
        return self._stats(obj).queued

    @admin.display(description="Failed, retry scheduled")
    def stats_retrying(self, obj: Campaign) -> int:
        return self._stats(obj).retrying

    @admin.display(description="Sent")
    def stats_sent(self, obj: Campaign) -> int:
        return self._stats(obj).sent

    @admin.display(description="Dead letters")
    def stats_dead(self, obj: Campaign) -> int:
        return self._stats(obj).dead

    @admin.display(description="Refused by the platform (mass messages)")
    def stats_rejected(self, obj: Campaign) -> int:
        return self._stats(obj).rejected

    @admin.display(description="Cancelled")
    def stats_cancelled(self, obj: Campaign) -> int:
        return self._stats(obj).cancelled

    @admin.display(description="Sent in the last minute")
    def stats_sent_last_minute(self, obj: Campaign) -> int:
        return self._stats(obj).sent_last_minute

    @admin.display(description="Done (sent, dead or cancelled)")
    def stats_progress(self, obj: Campaign) -> str:
        stats = self._stats(obj)
        return f"{stats.done} of {stats.targeted} ({stats.percent}%)"


@admin.register(CampaignPersonalText)
class CampaignPersonalTextAdmin(ReadOnlyAdmin):
    """Read-only: the texts are written by the personalisation task and dropped by an edit."""

    list_display = ["campaign", "fan", "source", "agency", "created_at"]
    list_filter = ["source"]
    search_fields = ["fan__username", "campaign__name"]
    list_select_related = ["campaign", "fan", "agency"]
    raw_id_fields = ["campaign", "fan"]
    show_full_result_count = False
    fields = ["agency", "campaign", "fan", "source", "text", "created_at"]


@admin.register(CampaignSettings)
class CampaignSettingsAdmin(ReadOnlyAdmin):
    list_display = ["agency", "approval_above", "fan_cap_per_day", "updated_at"]
    search_fields = ["agency__name"]
    list_select_related = ["agency"]


@admin.register(Automation)
class AutomationAdmin(ReadOnlyAdmin):
    """Read-only too: switching one on or off goes through ``automation_save`` (it sets the time
    events are watched from and stops the runs); the agency's owners and managers do it."""

    list_display = ["creator", "kind", "enabled", "enabled_at", "agency", "updated_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["creator__display_name", "agency__name"]
    list_select_related = ["creator", "agency"]
    fields = ["agency", "creator", "kind", "enabled", "enabled_at", "steps", "created_by", "updated_by", "created_at",
              "updated_at"]  # fmt: skip


@admin.register(AutomationRun)
class AutomationRunAdmin(ReadOnlyAdmin):
    list_display = ["automation", "fan", "agency", "trigger", "event_at", "status", "sent", "next_at"]
    list_filter = ["status", "automation__kind"]
    search_fields = ["fan__username", "trigger"]
    list_select_related = ["automation__creator", "fan", "agency"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ["agency", "automation", "fan", "trigger", "event_at", "status", "stop_reason", "step", "sent", "next_at",
              "created_at", "updated_at"]  # fmt: skip
