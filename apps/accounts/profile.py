"""A user's profile and preferences (the seed's SimpleUserService): display name, avatar, time
zone, language, keyboard shortcuts; and the user-level audit trail (``AccountEvent``).

The user's own, not an agency's: every function takes the user itself (``request.user`` or the
API token's user), never an id from a URL, so there is nothing of another user to reach.

Avatars: the upload is opened with Pillow, which decides the type from the content (the name
and the declared Content-Type are ignored); only PNG, JPEG, GIF and WebP are accepted, up to
``AVATAR_MAX_BYTES`` and ``AVATAR_MAX_PIXELS``. The first frame is cropped to a centred square,
resized to ``AVATAR_SIZE`` and re-encoded as WebP from the pixels alone, so EXIF (GPS, camera)
and any other metadata or trailing bytes never reach storage.

Where the preferences apply: ``UserPreferencesMiddleware`` activates the user's time zone (else
their current agency's) and language for each request; the shortcuts script is included by the
base template only when ``keyboard_shortcuts`` is on.
"""

from __future__ import annotations

import io
import logging
import zoneinfo
from functools import cache
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import AccountEvent, User, UserAvatar
from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

AVATAR_SIZE = 256
AVATAR_ALLOWED_FORMATS = {"PNG", "JPEG", "GIF", "WEBP"}
FULL_NAME_MAX = 150


@cache
def timezone_choices() -> list[str]:
    """The IANA names the system knows, sorted; "UTC" first."""
    names = sorted(name for name in zoneinfo.available_timezones() if "/" in name and not name.startswith("Etc/"))
    return ["UTC", *names]


def language_choices() -> list[tuple[str, str]]:
    return list(settings.LANGUAGES)


# --- Audit -----------------------------------------------------------------------------------


def account_event_record(*, user: User | None, kind: str, ip_address: str | None = None, **detail: Any) -> None:
    AccountEvent.objects.create(user=user, kind=kind, ip_address=ip_address or None, detail=detail)


# --- Profile ---------------------------------------------------------------------------------


def _clean_timezone(value: str) -> str:
    value = (value or "").strip()
    if value and value not in zoneinfo.available_timezones():
        raise ApplicationError(f"“{value[:64]}” is not a known time zone (for example Europe/Paris).", field="timezone")
    return value


def _clean_language(value: str) -> str:
    value = (value or "").strip()
    if value and value not in dict(settings.LANGUAGES):
        raise ApplicationError(f"“{value[:16]}” is not a language Huntaze offers.", field="language")
    return value


PROFILE_FIELDS = ("full_name", "timezone", "language", "keyboard_shortcuts")


@transaction.atomic
def profile_update(*, user: User, data: dict[str, Any], ip_address: str | None = None) -> User:
    """Change any of ``PROFILE_FIELDS`` present in ``data``; the others keep their value. An
    empty time zone or language means "the default" (the agency's zone; LANGUAGE_CODE)."""
    changed: dict[str, Any] = {}
    if "full_name" in data:
        name = str(data["full_name"] or "").strip()
        if len(name) > FULL_NAME_MAX:
            raise ApplicationError(f"Keep the name under {FULL_NAME_MAX} characters.", field="full_name")
        changed["full_name"] = name
    if "timezone" in data:
        changed["timezone"] = _clean_timezone(data["timezone"])
    if "language" in data:
        changed["language"] = _clean_language(data["language"])
    if "keyboard_shortcuts" in data:
        changed["keyboard_shortcuts"] = bool(data["keyboard_shortcuts"])
    changed = {key: value for key, value in changed.items() if getattr(user, key) != value}
    if changed:
        for key, value in changed.items():
            setattr(user, key, value)
        user.save(update_fields=list(changed))
        account_event_record(
            user=user, kind=AccountEvent.Kind.PROFILE_UPDATED, ip_address=ip_address, fields=sorted(changed)
        )
    return user


def avatar_image_from_upload(upload: UploadedFile) -> bytes:
    """The square WebP thumbnail of an uploaded picture; ApplicationError for anything else."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if upload.size is not None and upload.size > settings.AVATAR_MAX_BYTES:
        raise ApplicationError(
            f"The picture is too large: keep it under {settings.AVATAR_MAX_BYTES // (1024 * 1024)} MB.", field="avatar"
        )
    data = upload.read(settings.AVATAR_MAX_BYTES + 1)
    if len(data) > settings.AVATAR_MAX_BYTES:
        raise ApplicationError(
            f"The picture is too large: keep it under {settings.AVATAR_MAX_BYTES // (1024 * 1024)} MB.", field="avatar"
        )
    not_a_picture = ApplicationError(
        "That file is not a picture Huntaze can read (PNG, JPEG, GIF or WebP).", field="avatar"
    )
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in AVATAR_ALLOWED_FORMATS:
                raise not_a_picture
            width, height = probe.size
            if width * height > settings.AVATAR_MAX_PIXELS:
                raise ApplicationError("The picture has too many pixels: use one under 25 megapixels.", field="avatar")
            probe.seek(0)
            image = ImageOps.exif_transpose(probe)  # the orientation EXIF asks for, applied to the pixels
            image = image.convert("RGBA") if image.mode in ("RGBA", "LA", "P") else image.convert("RGB")
            square = ImageOps.fit(image, (AVATAR_SIZE, AVATAR_SIZE), method=Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        raise not_a_picture from None
    # A new image from the pixels alone: nothing of the upload's metadata is carried over.
    clean = Image.new(square.mode, square.size)
    clean.paste(square)
    out = io.BytesIO()
    clean.save(out, format="WEBP", quality=85, method=4)
    return out.getvalue()


@transaction.atomic
def avatar_set(*, user: User, upload: UploadedFile, ip_address: str | None = None) -> None:
    image = avatar_image_from_upload(upload)
    UserAvatar.objects.update_or_create(user=user, defaults={"image": image, "content_type": "image/webp"})
    user.avatar_updated_at = timezone.now()
    user.save(update_fields=["avatar_updated_at"])
    account_event_record(user=user, kind=AccountEvent.Kind.AVATAR_CHANGED, ip_address=ip_address, removed=False)


@transaction.atomic
def avatar_remove(*, user: User, ip_address: str | None = None) -> None:
    if user.avatar_updated_at is None:
        return
    UserAvatar.objects.filter(user=user).delete()
    user.avatar_updated_at = None
    user.save(update_fields=["avatar_updated_at"])
    account_event_record(user=user, kind=AccountEvent.Kind.AVATAR_CHANGED, ip_address=ip_address, removed=True)


def avatar_get(*, user: User) -> UserAvatar | None:
    return UserAvatar.objects.filter(user=user).first()


def account_event_list(*, user: User, limit: int = 20) -> list[AccountEvent]:
    return list(AccountEvent.objects.filter(user=user)[:limit])
