from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.account_deletion import agency_closing_hooks
from apps.accounts.models import (
    AccountEvent,
    Agency,
    ApiToken,
    AuthenticatorDevice,
    Creator,
    CreatorAssignment,
    DataExport,
    Invitation,
    Membership,
    RecoveryCode,
    RecoveryCodeDevice,
    User,
    UserAvatar,
    UserSession,
)
from apps.core.errors import ApplicationError


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password", "full_name"]}),
        ("Preferences", {"fields": ["timezone", "language", "keyboard_shortcuts", "avatar_updated_at"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]})]
    readonly_fields = ["avatar_updated_at"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["name", "timezone", "created_at"]
    search_fields = ["name"]
    list_filter = ["timezone"]
    inlines = [MembershipInline]

    def get_actions(self, request):
        # One at a time, through delete_view: closing an agency first cancels what it pays for.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        """On the confirming POST, ask the apps' closing hooks first (billing cancels the Stripe
        subscription, so the customer stops being charged); when one refuses, nothing is deleted."""
        if request.method == "POST":
            agency = self.get_object(request, unquote(object_id))
            allowed = agency is not None and self.has_delete_permission(request, agency)
            if allowed:  # only when the admin would delete it (no protected rows, every permission)
                _, _, perms_needed, protected = self.get_deleted_objects([agency], request)
                allowed = not perms_needed and not protected
            if allowed:
                try:
                    for finish in agency_closing_hooks([agency]):
                        finish()
                except ApplicationError as error:
                    self.message_user(request, error.message, messages.ERROR)
                    return HttpResponseRedirect(reverse("admin:accounts_agency_change", args=[agency.pk]))
        return super().delete_view(request, object_id, extra_context)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "agency", "role", "created_at"]
    list_filter = ["role", "agency"]
    search_fields = ["user__email", "agency__name"]
    list_select_related = ["user", "agency"]
    autocomplete_fields = ["user", "agency", "invited_by"]


@admin.register(Creator)
class CreatorAdmin(admin.ModelAdmin):
    list_display = [
        "display_name",
        "agency",
        "niche",
        "language",
        "timezone",
        "ppv_price_min",
        "ppv_price_max",
        "is_archived",
    ]
    list_filter = ["agency", "language", "is_archived"]
    search_fields = ["display_name", "niche", "agency__name"]
    list_select_related = ["agency"]
    autocomplete_fields = ["agency"]


@admin.register(CreatorAssignment)
class CreatorAssignmentAdmin(admin.ModelAdmin):
    list_display = ["membership", "creator", "agency", "created_at"]
    list_filter = ["agency"]
    search_fields = ["membership__user__email", "creator__display_name"]
    list_select_related = ["agency", "creator", "membership__user", "membership__agency"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "agency", "role", "created_at", "email_sent_at", "accepted_at", "revoked_at"]
    list_filter = ["agency", "role"]
    search_fields = ["email", "agency__name"]
    list_select_related = ["agency"]
    readonly_fields = ["email_sent_at", "accepted_at", "accepted_by", "created_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Only the prefix is shown: the secret was never stored and its hash stays hidden."""

    list_display = [
        "name",
        "agency",
        "prefix",
        "membership",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["agency"]
    search_fields = ["name", "prefix", "agency__name"]
    list_select_related = ["agency", "membership__user", "membership__agency"]
    exclude = ["token_hash"]
    readonly_fields = ["agency", "membership", "prefix", "scope", "created_at", "expires_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(UserSession)
class UserSessionAdmin(admin.ModelAdmin):
    """Read-only: who is logged in where. The session key stays hidden (it is the login)."""

    list_display = ["user", "created_at", "last_seen_at", "ip_address", "user_agent"]
    search_fields = ["user__email", "ip_address"]
    list_select_related = ["user"]
    exclude = ["session_key"]
    readonly_fields = ["user", "created_at", "last_seen_at", "ip_address", "user_agent"]

    def has_add_permission(self, request) -> bool:
        return False


# django-otp's own device admins show the TOTP seed (and a QR code of it) and the recovery codes,
# and would let staff make devices with plain secrets; two factor uses the devices below instead.
for plain_device in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(plain_device):
        admin.site.unregister(plain_device)


class SecondFactorDeviceAdmin(admin.ModelAdmin):
    """Read-only, secrets hidden: staff see whether a user has a device and may delete it, for a
    user who lost both phone and recovery codes (they then set two factor up again)."""

    list_display = ["user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count"]
    list_filter = ["confirmed"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    fields = ["user", "name", "confirmed", "created_at", "last_used_at", "throttling_failure_count"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuthenticatorDevice)
class AuthenticatorDeviceAdmin(SecondFactorDeviceAdmin):
    """The seed (``key``) is never shown, not even encrypted."""


@admin.register(RecoveryCodeDevice)
class RecoveryCodeDeviceAdmin(SecondFactorDeviceAdmin):
    """Shows how many codes are left, never the codes or their hashes."""

    list_display = [*SecondFactorDeviceAdmin.list_display, "codes_left"]
    fields = [*SecondFactorDeviceAdmin.fields, "codes_left"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(codes_count=Count("codes"))

    @admin.display(description="codes left", ordering="codes_count")
    def codes_left(self, device: RecoveryCodeDevice) -> int:
        return device.codes_count


@admin.register(RecoveryCode)
class RecoveryCodeAdmin(admin.ModelAdmin):
    """Whose unused codes these are; the salt and the hash stay hidden."""

    list_display = ["device", "id"]
    search_fields = ["device__user__email"]
    list_select_related = ["device__user"]
    fields = ["device"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- Profile and the user's own data: read-only (the user changes them, not staff) -------------


@admin.register(UserAvatar)
class UserAvatarAdmin(admin.ModelAdmin):
    list_display = ["user", "content_type", "updated_at"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    fields = ["user", "content_type", "updated_at"]
    readonly_fields = fields


@admin.register(AccountEvent)
class AccountEventAdmin(admin.ModelAdmin):
    list_display = ["kind", "user", "created_at", "ip_address"]
    list_filter = ["kind"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    fields = ["kind", "user", "created_at", "ip_address", "detail"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DataExport)
class DataExportAdmin(admin.ModelAdmin):
    """Status only: the ZIP holds the user's personal data and is theirs to download, not staff's."""

    list_display = ["user", "status", "progress", "size", "created_at", "expires_at"]
    list_filter = ["status"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    exclude = ["archive"]
    readonly_fields = ["user", "status", "progress", "size", "error", "created_at", "finished_at", "expires_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("archive")

    def has_add_permission(self, request) -> bool:
        return False
