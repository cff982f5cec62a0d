"""Accounts and tenancy: users, agencies (the tenant), memberships, creators; and a user's
second-factor devices (an authenticator app, recovery codes) with their secrets protected at rest.

Every tenant-owned row carries an indexed ``agency`` foreign key and is read through a scoped
queryset (``for_agency``) in selectors; there is no other sanctioned way to reach tenant data.
Invariants the database can state are constraints here; the business rules that need more
context (last owner, who may grant what) live in services.py.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP

from apps.core.crypto import EncryptedTextField


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("email_verified_at", timezone.now())  # made by an operator, not a sign-up
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person who logs in with an email address. Roles come from memberships, not from here."""

    username = None
    first_name = None
    last_name = None
    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    email_verified_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the user opened the verification link. Unverified accounts cannot "
        "invite members or add AI provider keys.",
    )
    # Preferences (apps/accounts/profile.py): empty timezone and language mean "the default"
    # (the current agency's time zone; LANGUAGE_CODE).
    timezone = models.CharField(max_length=64, blank=True)
    language = models.CharField(max_length=8, blank=True)
    keyboard_shortcuts = models.BooleanField(default=False)
    avatar_updated_at = models.DateTimeField(null=True, blank=True, editable=False)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return (self.full_name.split() or [self.email])[0]

    @property
    def is_email_verified(self) -> bool:
        return self.email_verified_at is not None


class TenantQuerySet(models.QuerySet):
    """Query vocabulary for tenant-owned models."""

    def for_agency(self, agency: Agency | int) -> TenantQuerySet:
        return self.filter(agency=agency)


class Agency(models.Model):
    """The tenant: a solo creator's business or an agency running many creators."""

    name = models.CharField(max_length=120)
    timezone = models.CharField(max_length=64, default="UTC")
    require_two_factor = models.BooleanField(
        default=False,
        help_text="Members must sign in with a second factor before using the agency's pages "
        "(set by an owner; apps/accounts/two_factor.py).",
    )
    entitlements_version = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Raised after each committed change to the agency's plan, subscription or creators; "
        "web processes key their copy of the entitlements by it (apps/billing/entitlements.py).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "agencies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    CHATTER = "chatter", "Chatter"
    VIEWER = "viewer", "Viewer"


class Membership(models.Model):
    """A user's role in one agency; at most one per user and agency."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "user"], name="membership_one_per_user_agency"),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.agency}"


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (for example Europe/Paris).")


class Language(models.TextChoices):
    EN = "en", "English"
    ES = "es", "Spanish"
    FR = "fr", "French"
    DE = "de", "German"
    IT = "it", "Italian"
    PT = "pt", "Portuguese"
    NL = "nl", "Dutch"
    PL = "pl", "Polish"
    JA = "ja", "Japanese"


PLATFORMS = {
    "onlyfans": "OnlyFans",
    "fansly": "Fansly",
    "instagram": "Instagram",
    "x": "X",
    "tiktok": "TikTok",
    "reddit": "Reddit",
}


class Creator(models.Model):
    """One creator account an agency runs: persona, voice, boundaries, timezone, PPV range."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="creators")
    display_name = models.CharField(max_length=80)
    handles = models.JSONField(default=dict, blank=True, help_text="Platform → handle, without @.")
    niche = models.CharField(max_length=80, blank=True)
    persona = models.TextField(blank=True, help_text="Who the creator is, in a few sentences.")
    voice = models.TextField(blank=True, help_text="How the creator writes: tone, slang, emoji habits.")
    sample_texts = models.JSONField(default=list, blank=True, help_text="Messages in the creator's own words.")
    avoid_words = models.JSONField(default=list, blank=True)
    avoid_topics = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=8, choices=Language.choices, default=Language.EN)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    ppv_price_min = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("5.00"), validators=[MinValueValidator(Decimal("1.00"))]
    )
    ppv_price_max = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("50.00"), validators=[MinValueValidator(Decimal("1.00"))]
    )
    currency = models.CharField(max_length=3, default="USD")
    is_archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["display_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "display_name"], name="creator_unique_name_per_agency"),
            models.CheckConstraint(condition=models.Q(ppv_price_min__gt=0), name="creator_ppv_min_positive"),
            models.CheckConstraint(
                condition=models.Q(ppv_price_max__gte=models.F("ppv_price_min")), name="creator_ppv_range_ordered"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    def handle_list(self) -> list[tuple[str, str]]:
        return [(PLATFORMS.get(key, key), value) for key, value in self.handles.items() if value]


class CreatorAssignment(models.Model):
    """A chatter's assignment to a creator: chatters see and answer only their creators."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="+")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="assignments")
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="assignments")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["membership", "creator"], name="assignment_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.membership.user} → {self.creator}"


class Invitation(models.Model):
    """An emailed invitation to join an agency with a role. The link is signed and expires."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "agency",
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_pending_per_email",
            ),
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="invitation_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.agency} ({self.role})"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None


class TokenScope(models.TextChoices):
    """What an API token may do, each level including the ones before it. A token never acts
    beyond its member's current role: the effective permission is scope ∩ role
    (apps.accounts.permissions)."""

    READ = "read", "Read: safe methods only"
    WRITE = "write", "Write: read, plus creators, studio and messages"
    ADMIN = "admin", "Admin: write, plus members, invitations, tokens and agency settings"


class ApiToken(models.Model):
    """A per-agency API token. Only a SHA-256 of the secret is stored; the secret is shown once.

    A token acts with the role of the membership that created it, limited by its scope, until it
    expires; it dies with the membership.
    """

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="api_tokens")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=12, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=TokenScope.values), name="apitoken_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class UserSession(models.Model):
    """What a user sees of one of their logged-in sessions: when and where it started, when it
    was last used. The session itself lives in Django's session store under ``session_key``;
    this row is written at login and refreshed at most every few minutes (apps/accounts/sessions.py).
    A user's own, not a tenant's: it lists sessions across every agency they belong to."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="user_sessions")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.user} since {self.created_at:%Y-%m-%d %H:%M}"


# --- Second-factor devices -------------------------------------------------------------------
# Our own django-otp devices rather than its TOTPDevice and StaticDevice, which keep the TOTP seed
# in plain hex and recovery codes in plain text. They plug into django-otp unchanged (verify_token,
# OTPMiddleware, the session's persistent id); the rules around them live in two_factor.py.


def totp_key_new() -> str:
    """A new TOTP seed: 20 random bytes (160 bits, RFC 4226's recommendation), hex."""
    return secrets.token_hex(20)


class AuthenticatorDevice(TimestampMixin, ThrottlingMixin, Device):
    """An authenticator app (TOTP, RFC 6238). Field for field django-otp's ``TOTPDevice``, except
    that the seed is Fernet-encrypted at rest (``EncryptedTextField``, ``ENCRYPTION_KEYS``; moved
    to the newest key by ``rotate_encryption_keys``). It is never shown after set-up."""

    key = EncryptedTextField(default=totp_key_new, help_text="The TOTP seed, hex; stored encrypted.")
    step = models.PositiveSmallIntegerField(default=30, help_text="The time step in seconds.")
    t0 = models.BigIntegerField(default=0, help_text="The Unix time at which to begin counting steps.")
    digits = models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)
    tolerance = models.PositiveSmallIntegerField(default=1, help_text="Time steps in the past or future allowed.")
    drift = models.SmallIntegerField(default=0, help_text="Time steps the app is known to be off our clock.")
    last_t = models.BigIntegerField(default=-1, help_text="The time step of the last accepted code (never reused).")

    class Meta(Device.Meta):
        verbose_name = "authenticator app"

    @property
    def bin_key(self) -> bytes:
        return bytes.fromhex(self.key)

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    def verify_token(self, token) -> bool:
        """django-otp's ``TOTPDevice.verify_token`` (1.7): a code within ``tolerance`` steps of
        now and later than the last accepted one; drift kept in sync (``OTP_TOTP_SYNC``);
        throttled. Saves only the counters, so the seed is not re-encrypted on every attempt."""
        if not self.verify_is_allowed()[0]:
            return False
        try:
            code = int(token)
        except (TypeError, ValueError):
            verified = False
        else:
            totp = TOTP(self.bin_key, self.step, self.t0, self.digits, self.drift)
            totp.time = time.time()
            verified = totp.verify(code, self.tolerance, self.last_t + 1)
        if verified:
            self.last_t = totp.t()
            if getattr(settings, "OTP_TOTP_SYNC", True):
                self.drift = totp.drift
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save(update_fields=[*_THROTTLE_FIELDS, "last_used_at", "last_t", "drift"])
        else:
            self.throttle_increment(commit=False)
            self.save(update_fields=_THROTTLE_FIELDS)
        return verified


_THROTTLE_FIELDS = ["throttling_failure_timestamp", "throttling_failure_count"]


def recovery_code_digest(code: str, *, salt: str) -> str:
    """SHA-256 of a recovery code with its own salt. A fast hash is enough for random codes of
    80 bits; a slow password hash would cost seconds per attempt over ten codes."""
    return hashlib.sha256(bytes.fromhex(salt) + code.encode()).hexdigest()


class RecoveryCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A user's recovery codes, each accepted once instead of an authenticator code. Like
    django-otp's ``StaticDevice``, but the codes are stored hashed (``RecoveryCode``)."""

    class Meta(Device.Meta):
        verbose_name = "recovery codes"
        verbose_name_plural = "recovery codes"

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_STATIC_THROTTLE_FACTOR", 1)

    def verify_token(self, token) -> bool:
        """Compares with every code in constant time (no early exit); the matching code is used
        up by deleting its row, and only the request that deletes it is let in."""
        if not self.verify_is_allowed()[0]:
            return False
        match = None
        for code in self.codes.all():
            if hmac.compare_digest(recovery_code_digest(str(token), salt=code.salt), code.digest):
                match = code
        used = match is not None and RecoveryCode.objects.filter(pk=match.pk).delete()[0] == 1
        if used:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save(update_fields=[*_THROTTLE_FIELDS, "last_used_at"])
        else:
            self.throttle_increment(commit=False)
            self.save(update_fields=_THROTTLE_FIELDS)
        return used


class RecoveryCode(models.Model):
    """One unused recovery code, as a salted SHA-256: the code itself is shown once and never
    stored."""

    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    salt = models.CharField(max_length=32)
    digest = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"recovery code of {self.device}"


# --- Profile, preferences and the user's own data ----------------------------------------------
# A user's own, not a tenant's: these rows follow the user across every agency they belong to and
# are reached only through ``request.user`` (apps/accounts/profile.py), never by an id from a URL.


class UserAvatar(models.Model):
    """A user's picture: a square WebP thumbnail re-encoded from the upload (no metadata), kept in
    the database rather than MEDIA_ROOT so that every web process serves it without shared disk
    (a few kilobytes a user). ``User.avatar_updated_at`` says whether there is one."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, primary_key=True, related_name="avatar")
    image = models.BinaryField()
    content_type = models.CharField(max_length=32, default="image/webp")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"avatar of {self.user_id}"


class AccountEventKind(models.TextChoices):
    PROFILE_UPDATED = "profile.updated", "Profile updated"
    AVATAR_CHANGED = "profile.avatar", "Avatar changed"
    PREFERENCES_UPDATED = "preferences.updated", "Notification preferences updated"
    EXPORT_REQUESTED = "export.requested", "Data export requested"
    EXPORT_DOWNLOADED = "export.downloaded", "Data export downloaded"
    ACCOUNT_DELETED = "account.deleted", "Account deleted"


class AccountEvent(models.Model):
    """The user-level audit trail: profile changes, data exports, account deletion. A deleted
    user's events keep no personal data: ``user`` is nulled and ``detail`` holds counts only."""

    Kind = AccountEventKind

    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="account_events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=AccountEventKind.values), name="accountevent_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M}"


class DataExport(models.Model):
    """One "export my data" run: a ZIP of JSON files built by a Celery task
    (apps/accounts/data_export.py), downloadable by its user alone until ``expires_at``. The ZIP
    is kept in the row (a user's own data is small) and dropped when it expires."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        RUNNING = "running", "Being prepared"
        READY = "ready", "Ready to download"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="data_exports")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    archive = models.BinaryField(null=True, blank=True, editable=False)
    size = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "running", "ready", "failed", "expired"]),
                name="dataexport_status_valid",
            ),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="dataexport_progress_percent"),
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status__in=["pending", "running"]),
                name="dataexport_one_running_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.user_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.RUNNING)

    @property
    def is_downloadable(self) -> bool:
        return self.status == self.Status.READY and self.expires_at is not None and self.expires_at > timezone.now()
