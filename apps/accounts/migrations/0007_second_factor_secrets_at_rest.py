"""Move two-factor devices out of django-otp's plain-text tables into our own (0006).

Every ``otp_totp.TOTPDevice``, confirmed or not, becomes an ``AuthenticatorDevice`` with the same
seed, now Fernet-encrypted (``ENCRYPTION_KEYS`` must be set), and the same step, drift, last used
step and throttling, so the user's authenticator app keeps working and no code is accepted twice.
Every ``otp_static.StaticDevice`` becomes a ``RecoveryCodeDevice`` whose codes are stored as
salted SHA-256. The plain rows are then deleted. Sessions verified with an old device are pointed
at the new one, so nobody is asked for a code again (database sessions only; with another session
engine those users simply log in again).

Reverse: authenticators go back to ``TOTPDevice`` with their seed in plain hex again, because the
code before this migration needs it to let their users sign in. Recovery codes cannot come back:
only their hashes were kept, so each user's old codes are gone and they make new ones in
Settings (the reverse deletes the hashed rows rather than leave codes that nothing checks).
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import migrations
from django.utils import timezone

from apps.accounts.models import recovery_code_digest

SESSION_DEVICE_KEY = "otp_device_id"  # django_otp.DEVICE_ID_SESSION_KEY
COPIED = [
    "name",
    "confirmed",
    "throttling_failure_timestamp",
    "throttling_failure_count",
    "last_used_at",
]
TOTP_COPIED = [*COPIED, "step", "t0", "digits", "tolerance", "drift", "last_t"]


def _persistent_id(model, pk: int) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}/{pk}"


def _copy(source, target_model, fields: list[str], **extra):
    target = target_model.objects.create(user_id=source.user_id, **{f: getattr(source, f) for f in fields}, **extra)
    # created_at is auto_now_add: set after the insert to keep the original date.
    target_model.objects.filter(pk=target.pk).update(created_at=source.created_at)
    return target


def forwards(apps, schema_editor) -> None:
    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    StaticDevice = apps.get_model("otp_static", "StaticDevice")
    StaticToken = apps.get_model("otp_static", "StaticToken")
    AuthenticatorDevice = apps.get_model("accounts", "AuthenticatorDevice")
    RecoveryCodeDevice = apps.get_model("accounts", "RecoveryCodeDevice")
    RecoveryCode = apps.get_model("accounts", "RecoveryCode")
    moved: dict[str, str] = {}

    for old in TOTPDevice.objects.order_by("pk"):
        new = _copy(old, AuthenticatorDevice, TOTP_COPIED, key=old.key.lower())
        moved[_persistent_id(TOTPDevice, old.pk)] = _persistent_id(AuthenticatorDevice, new.pk)

    for old in StaticDevice.objects.order_by("pk"):
        new = _copy(old, RecoveryCodeDevice, COPIED)
        codes = []
        for token in StaticToken.objects.filter(device_id=old.pk).values_list("token", flat=True):
            salt = secrets.token_hex(16)
            codes.append(RecoveryCode(device_id=new.pk, salt=salt, digest=recovery_code_digest(token, salt=salt)))
        RecoveryCode.objects.bulk_create(codes)
        moved[_persistent_id(StaticDevice, old.pk)] = _persistent_id(RecoveryCodeDevice, new.pk)

    StaticToken.objects.all().delete()
    StaticDevice.objects.all().delete()
    TOTPDevice.objects.all().delete()
    _sessions_follow(apps, moved)


def backwards(apps, schema_editor) -> None:
    TOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    AuthenticatorDevice = apps.get_model("accounts", "AuthenticatorDevice")
    RecoveryCodeDevice = apps.get_model("accounts", "RecoveryCodeDevice")
    moved: dict[str, str] = {}

    for new in AuthenticatorDevice.objects.order_by("pk"):
        old = _copy(new, TOTPDevice, TOTP_COPIED, key=new.key)
        moved[_persistent_id(AuthenticatorDevice, new.pk)] = _persistent_id(TOTPDevice, old.pk)

    RecoveryCodeDevice.objects.all().delete()  # with their RecoveryCode rows
    AuthenticatorDevice.objects.all().delete()
    _sessions_follow(apps, moved)


def _sessions_follow(apps, moved: dict[str, str]) -> None:
    """Point each live session verified by a moved device at its new persistent id."""
    if not moved or settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        return
    from django.contrib.sessions.backends.db import SessionStore

    Session = apps.get_model("sessions", "Session")
    store = SessionStore()
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        data = store.decode(session.session_data)
        device_id = moved.get(data.get(SESSION_DEVICE_KEY))
        if device_id is not None:
            data[SESSION_DEVICE_KEY] = device_id
            Session.objects.filter(pk=session.pk).update(session_data=store.encode(data))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_second_factor_devices"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
        ("sessions", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
