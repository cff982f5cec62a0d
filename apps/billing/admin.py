"""Admin for billing: plans editable (with their Stripe price); a subscription's plan, status and
overage assigned by hand (manual billing, the embedded default) with the change recorded, its
Stripe ids shown read-only; the change log, Stripe's webhook events (flagged ones filterable) and
the usage reports to Stripe's meter read-only. No secret is stored on these rows."""

from __future__ import annotations

from django.contrib import admin

from apps.billing import services
from apps.billing.models import BillingEvent, Plan, Subscription, SubscriptionChange, UsageReport


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "name", "code", "monthly_price_usd", "max_creators", "max_seats", "ai_credits_monthly",
        "feature_campaigns", "feature_optimization", "trial_days", "is_public", "stripe_price_id",
    )  # fmt: skip
    ordering = ("position", "id")


class SubscriptionChangeInline(admin.TabularInline):
    model = SubscriptionChange
    extra = 0
    can_delete = False
    fields = ("created_at", "from_plan", "to_plan", "from_status", "to_status", "by", "reason")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("agency", "plan", "status", "source", "trial_ends_at", "overage_allowed", "updated_at")
    list_filter = ("plan", "status", "source", "overage_allowed")
    search_fields = ("agency__name",)
    list_select_related = ("agency", "plan")
    raw_id_fields = ("agency",)
    fields = (
        "agency", "plan", "status", "trial_ends_at", "current_period_start", "current_period_end",
        "overage_allowed", "note", "source", "assigned_by", "stripe_customer_id", "stripe_subscription_id",
        "cancel_at_period_end", "past_due_since", "grace_ends_at", "stripe_synced_at",
    )  # fmt: skip
    readonly_fields = (
        "source", "assigned_by", "stripe_customer_id", "stripe_subscription_id", "cancel_at_period_end",
        "past_due_since", "grace_ends_at", "stripe_synced_at",
    )  # fmt: skip
    inlines = (SubscriptionChangeInline,)

    def save_model(self, request, obj: Subscription, form, change: bool) -> None:
        before = (None, "")
        if change and obj.pk:
            old = Subscription.objects.select_related("plan").get(pk=obj.pk)
            before = (old.plan, old.status)
        obj.assigned_by = request.user
        # The grace period follows the status as on every other path: "Past due" set here starts
        # one (banner, read-only at its end), any other status ends it.
        services.dunning_update(obj, obj.status)
        super().save_model(request, obj, form, change)
        services.subscription_changed(subscription=obj, before=before, by=request.user)


@admin.register(SubscriptionChange)
class SubscriptionChangeAdmin(admin.ModelAdmin):
    list_display = ("created_at", "agency", "from_plan", "to_plan", "to_status", "by", "reason")
    list_filter = ("to_plan", "to_status")
    list_select_related = ("agency", "from_plan", "to_plan", "by")
    search_fields = ("agency__name",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(BillingEvent)
class BillingEventAdmin(_ReadOnlyAdmin):
    list_display = ("created", "type", "stripe_id", "agency", "processed_at", "flagged", "error")
    list_filter = ("flagged", "type", "livemode")
    list_select_related = ("agency",)
    search_fields = ("stripe_id", "type", "agency__name")


@admin.register(UsageReport)
class UsageReportAdmin(_ReadOnlyAdmin):
    list_display = ("agency", "month", "sequence", "credits", "cumulative_credits", "sent_at", "error")
    list_filter = ("month",)
    list_select_related = ("agency",)
    search_fields = ("agency__name", "identifier")
