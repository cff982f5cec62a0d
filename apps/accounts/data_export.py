"""Export my data: a ZIP of JSON files holding what Huntaze keeps about one user, built in the
background and downloadable by that user alone for ``DATA_EXPORT_TTL_HOURS``.

Flow: ``data_export_start`` (page or API) records the request (an ``AccountEvent``) and enqueues
``build_data_export`` on commit; the task claims the row with a conditional update (pending →
running; a second delivery of the task changes nothing and returns), writes each section while
moving ``progress`` forward (the page polls it), and stores the ZIP with its expiry. One export
runs per user at a time (a partial unique constraint).

Sections: accounts writes the profile, memberships, API tokens (name, prefix, scope, dates),
sessions and the account's audit events itself; every other app may add files through a
``personal_data.py`` module defining ``export_for_user(user) -> dict[str, Any]`` (file name
without ``.json`` → JSON-serialisable data), discovered like the dashboard hooks
(apps/core/registry.py ``app_modules``), so this layer never imports a higher one.

Never exported: the password hash, TOTP seeds, recovery codes, API token secrets or hashes,
session keys. The avatar is included as ``avatar.webp``.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from apps.accounts.models import AccountEvent, ApiToken, DataExport, Membership, User, UserAvatar, UserSession
from apps.accounts.profile import account_event_record
from apps.core.errors import ConflictError
from apps.core.registry import app_modules

logger = logging.getLogger(__name__)


# --- Writes ----------------------------------------------------------------------------------


# An export still waiting or building after this long lost its worker (killed mid-build, a lost
# task): it is marked failed so that it no longer blocks a new one (one at a time per user).
STALE_AFTER = timedelta(minutes=30)


def _fail_stale(*, now, user: User | None = None) -> int:
    stale = DataExport.objects.filter(
        status__in=[DataExport.Status.PENDING, DataExport.Status.RUNNING], created_at__lte=now - STALE_AFTER
    )
    if user is not None:
        stale = stale.filter(user=user)
    lost = "The export stopped before it finished; start a new one."
    return stale.update(status=DataExport.Status.FAILED, error=lost)


def data_export_start(*, user: User, ip_address: str | None = None) -> DataExport:
    """A new export for ``user``, built by a worker. ConflictError while one is being built."""
    _fail_stale(now=timezone.now(), user=user)
    try:
        with transaction.atomic():
            export = DataExport.objects.create(user=user)
            account_event_record(user=user, kind=AccountEvent.Kind.EXPORT_REQUESTED, ip_address=ip_address)
            from apps.accounts.tasks import build_data_export

            build_data_export.delay_on_commit(export.pk)
    except IntegrityError:
        raise ConflictError("An export of your data is already being prepared; it will be ready shortly.") from None
    return export


def data_export_build(*, export_id: int) -> bool:
    """Build the ZIP; False when another run claimed it already (the task is idempotent)."""
    claimed = DataExport.objects.filter(pk=export_id, status=DataExport.Status.PENDING).update(
        status=DataExport.Status.RUNNING, progress=1
    )
    if not claimed:
        return False
    export = DataExport.objects.select_related("user").get(pk=export_id)
    try:
        archive = _archive(export)
    except Exception as error:  # shown to the user as a failed export they may start again
        logger.exception("data export %s failed", export_id)
        DataExport.objects.filter(pk=export_id).update(
            status=DataExport.Status.FAILED, error=type(error).__name__[:300], finished_at=timezone.now()
        )
        return False
    now = timezone.now()
    DataExport.objects.filter(pk=export_id).update(
        status=DataExport.Status.READY,
        progress=100,
        archive=archive,
        size=len(archive),
        finished_at=now,
        expires_at=now + timedelta(hours=settings.DATA_EXPORT_TTL_HOURS),
    )
    return True


def data_exports_purge_expired(*, now=None) -> int:
    """Drop the ZIPs of exports past their expiry (the row stays, marked expired), and mark failed
    the exports whose worker was lost (STALE_AFTER)."""
    now = now or timezone.now()
    _fail_stale(now=now)
    return DataExport.objects.filter(status=DataExport.Status.READY, expires_at__lte=now).update(
        status=DataExport.Status.EXPIRED, archive=None
    )


def data_export_download(*, user: User, ip_address: str | None = None) -> tuple[DataExport, bytes]:
    """The user's latest export and its ZIP, while it is downloadable; 404 otherwise."""
    export = data_export_latest(user=user)
    if export is None or not export.is_downloadable:
        raise Http404("There is no export of your data to download. Start a new one.")
    archive = DataExport.objects.filter(pk=export.pk).values_list("archive", flat=True).first()
    if not archive:
        raise Http404("There is no export of your data to download. Start a new one.")
    account_event_record(user=user, kind=AccountEvent.Kind.EXPORT_DOWNLOADED, ip_address=ip_address)
    return export, bytes(archive)


# --- Reads -----------------------------------------------------------------------------------


def data_export_latest(*, user: User) -> DataExport | None:
    return DataExport.objects.filter(user=user).defer("archive").order_by("-created_at", "-id").first()


def data_export_filename(export: DataExport) -> str:
    return f"huntaze-data-{export.created_at:%Y%m%d-%H%M}.zip"


# --- Building --------------------------------------------------------------------------------


def _progress(export_id: int, percent: int) -> None:
    DataExport.objects.filter(pk=export_id, status=DataExport.Status.RUNNING).update(progress=min(percent, 99))


def _archive(export: DataExport) -> bytes:
    user = export.user
    sections: list[tuple[str, Any]] = [
        ("profile", _profile(user)),
        ("memberships", _memberships(user)),
        ("api_tokens", _api_tokens(user)),
        ("sessions", _sessions(user)),
        ("account_events", _account_events(user)),
    ]
    modules = [module for module in app_modules("personal_data") if hasattr(module, "export_for_user")]
    total = len(sections) + len(modules) + 1
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        done = 0
        for name, data in sections:
            _write(archive, name, data)
            done += 1
            _progress(export.pk, done * 100 // total)
        for module in modules:
            for name, data in module.export_for_user(user).items():
                _write(archive, name, data)
            done += 1
            _progress(export.pk, done * 100 // total)
        avatar = UserAvatar.objects.filter(user=user).values_list("image", flat=True).first()
        if avatar:
            archive.writestr("avatar.webp", bytes(avatar))
        archive.writestr("README.txt", _README.format(email=user.email, at=timezone.now().isoformat()))
    return buffer.getvalue()


def _write(archive: zipfile.ZipFile, name: str, data: Any) -> None:
    archive.writestr(f"{name}.json", json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False))


def _profile(user: User) -> dict[str, Any]:
    from apps.accounts.two_factor import two_factor_enabled

    return {
        "email": user.email,
        "full_name": user.full_name,
        "timezone": user.timezone,
        "language": user.language,
        "keyboard_shortcuts": user.keyboard_shortcuts,
        "date_joined": user.date_joined,
        "last_login": user.last_login,
        "email_verified_at": user.email_verified_at,
        "two_factor_enabled": two_factor_enabled(user=user),
        "has_avatar": user.avatar_updated_at is not None,
    }


def _memberships(user: User) -> list[dict[str, Any]]:
    return [
        {"agency": m.agency.name, "agency_id": m.agency_id, "role": m.role, "joined_at": m.created_at}
        for m in Membership.objects.filter(user=user).select_related("agency").order_by("created_at")
    ]


def _api_tokens(user: User) -> list[dict[str, Any]]:
    rows = ApiToken.objects.filter(membership__user=user).select_related("agency").order_by("created_at")
    return [
        {
            "name": t.name,
            "prefix": t.prefix,
            "agency": t.agency.name,
            "scope": t.scope,
            "created_at": t.created_at,
            "expires_at": t.expires_at,
            "last_used_at": t.last_used_at,
            "revoked_at": t.revoked_at,
        }
        for t in rows
    ]


def _sessions(user: User) -> list[dict[str, Any]]:
    return [
        {
            "started_at": s.created_at,
            "last_seen_at": s.last_seen_at,
            "ip_address": s.ip_address,
            "browser": s.user_agent,
        }
        for s in UserSession.objects.filter(user=user).order_by("-last_seen_at")
    ]


def _account_events(user: User) -> list[dict[str, Any]]:
    return [
        {"event": e.kind, "at": e.created_at, "ip_address": e.ip_address, "detail": e.detail}
        for e in AccountEvent.objects.filter(user=user).order_by("created_at")
    ]


_README = """Your Huntaze data
=================

Account: {email}
Prepared: {at}

Each .json file holds one part of what Huntaze keeps about you: your profile and preferences,
your memberships, the API tokens you created (never their secrets), your sessions, your account's
audit events, your notifications and notification preferences, and what you wrote in the agencies
you belong to where Huntaze records you as its author.

Passwords, two-factor secrets, recovery codes and API token secrets are never exported.
"""
