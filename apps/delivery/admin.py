"""Admin for deliveries (read-only, with the dead-letter re-queue action, which follows the
re-queue rules of the apps that enqueued them: see ``delivery_requeue_for_staff``), the fans of mass
deliveries, and the simulated platform's received messages and mass messages (read-only,
labelled simulated)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from apps.accounts.models import PLATFORMS
from apps.delivery.breaker import breaker_status
from apps.delivery.limits import account_status
from apps.delivery.models import Delivery, MassRecipient, SimulatedMassMessage, SimulatedOutboundMessage
from apps.delivery.services import delivery_requeue_for_staff

BUSIEST_ACCOUNTS = 10  # accounts with the most waiting deliveries shown above the list


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deliveries are data that must never be lost


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id", "agency", "creator", "platform", "kind", "recipient_id", "recipient_count", "queue", "status",
        "attempts", "max_attempts", "next_attempt_at", "sent_at", "created_at",
    ]  # fmt: skip
    list_filter = ["status", "kind", "queue", "platform", "agency"]
    search_fields = ["idempotency_key", "recipient_id", "platform_message_id", "agency__name"]
    list_select_related = ["agency", "creator"]
    date_hierarchy = "created_at"
    actions = ["requeue_dead"]
    change_list_template = "admin/delivery/delivery/change_list.html"

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [field.name for field in Delivery._meta.fields]

    def changelist_view(self, request, extra_context=None):
        """Above the list: each platform's circuit breaker, and the send rate in force for the
        accounts with the most deliveries waiting (lower than configured after a 429)."""
        from django.db.models import Count

        waiting = (
            Delivery.objects.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.FAILED])
            .values("creator_id", "creator__display_name", "platform")
            .annotate(waiting=Count("id"))
            .order_by("-waiting")[:BUSIEST_ACCOUNTS]
        )
        accounts = []
        for row in waiting:
            status = account_status(creator_id=row["creator_id"], platform=row["platform"])
            accounts.append({**row, "platform_name": PLATFORMS.get(row["platform"], row["platform"]), "limit": status})
        breakers = [{"platform": name, **breaker_status(key)} for key, name in PLATFORMS.items()]
        context = {**(extra_context or {}), "send_accounts": accounts, "send_breakers": breakers}
        return super().changelist_view(request, extra_context=context)

    def has_requeue_permission(self, request) -> bool:
        return request.user.has_perm("delivery.change_delivery")

    @admin.action(description="Re-queue selected dead deliveries", permissions=["requeue"])
    def requeue_dead(self, request, queryset) -> None:
        try:
            done = delivery_requeue_for_staff(
                user=request.user, delivery_ids=list(queryset.values_list("pk", flat=True))
            )
        except PermissionDenied as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        text = f"Re-queued {done.requeued} dead deliver{'y' if done.requeued == 1 else 'ies'}."
        for reason, count in sorted(done.held.items()):
            text += f" {count} re-queued but held: {reason}."
        for reason, count in sorted(done.refused.items()):
            text += f" {count} refused, left dead: {reason}."
        if done.not_dead > 0:
            text += f" {done.not_dead} not dead, left alone."
        level = messages.SUCCESS if done.requeued or done.held else messages.WARNING
        self.message_user(request, text, level)


@admin.register(SimulatedOutboundMessage)
class SimulatedOutboundMessageAdmin(ReadOnlyAdmin):
    """What the SIMULATED platform received; nothing here reached a real platform."""

    list_display = [
        "platform_message_id",
        "agency",
        "creator",
        "platform",
        "recipient_id",
        "idempotency_key",
        "received_at",
    ]
    list_filter = ["platform", "agency"]
    search_fields = ["idempotency_key", "recipient_id", "platform_message_id", "agency__name"]
    list_select_related = ["agency", "creator"]
    date_hierarchy = "received_at"

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [field.name for field in SimulatedOutboundMessage._meta.fields]


@admin.register(MassRecipient)
class MassRecipientAdmin(ReadOnlyAdmin):
    """The fans of mass deliveries (one row per fan), and which the platform rejected."""

    list_display = ["id", "agency", "delivery", "recipient_id", "rejected"]
    list_filter = ["rejected", "agency"]
    search_fields = ["recipient_id", "delivery__idempotency_key"]
    list_select_related = ["agency", "delivery"]
    show_full_result_count = False  # one row per fan: no count of the whole table per page

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [field.name for field in MassRecipient._meta.fields]


@admin.register(SimulatedMassMessage)
class SimulatedMassMessageAdmin(ReadOnlyAdmin):
    """The mass messages the SIMULATED platform received; nothing here reached a real platform."""

    list_display = ["platform_message_id", "agency", "creator", "platform", "fans", "idempotency_key", "received_at"]
    list_filter = ["platform", "agency"]
    search_fields = ["idempotency_key", "platform_message_id", "agency__name"]
    list_select_related = ["agency", "creator"]
    date_hierarchy = "received_at"

    @admin.display(description="fans")
    def fans(self, obj: SimulatedMassMessage) -> int:
        return len(obj.recipient_ids)

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [field.name for field in SimulatedMassMessage._meta.fields]
