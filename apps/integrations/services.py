"""Writes for connections: connect through OAuth, configure a third-party API account, refresh,
disconnect; every one leaves a ConnectionEvent.

Rules the database cannot state:

- only members allowed to edit (owners and managers) connect, reconnect or disconnect, and only
  for creators they can see;
- an OAuth callback is accepted only for a ``state`` this browser session started, within
  ``INTEGRATIONS_OAUTH_STATE_SECONDS``, once; the PKCE verifier never leaves the server until the
  code exchange, and nothing is stored unless the exchange succeeds;
- a rotated refresh token replaces the old one in the same write as the new access token;
- a refresh the provider refuses for good (``invalid_grant`` and the like) marks the connection
  needs_reconnect and tells the agency's owners; a transient failure (network, 5xx, 429, an
  answer we cannot use) changes nothing but ``last_error`` and is tried again on the next run,
  until INTEGRATIONS_BROKEN_AFTER_FAILURES in a row mark it **broken** (owners told once); an
  account the platform holds or blocks is broken at once;
- an Instagram sign-in's short-lived token is exchanged for a long-lived one before anything is
  stored (a refused or failed exchange stores nothing); long-lived tokens have no refresh token:
  the access token itself is refreshed on the Graph host (``providers.instagram_refresh``);
- disconnecting wipes every secret of the connection.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Creator, Membership, Role
from apps.accounts.permissions import Perm, require, require_verified
from apps.accounts.selectors import member_list
from apps.core.errors import ApplicationError
from apps.core.shared import shared_state
from apps.integrations import providers
from apps.integrations.models import (
    API_PLATFORMS,
    OAUTH_PLATFORMS,
    Connection,
    ConnectionEvent,
    ConnectionEventKind,
    ConnectionStatus,
    Platform,
)
from apps.notifications.models import Notification
from apps.notifications.services import notification_send

logger = logging.getLogger(__name__)

SESSION_OAUTH = "integrations.oauth"
MAX_PENDING_STATES = 5
# Token endpoint errors that no retry will fix: the grant is gone, the owner must reconnect.
PERMANENT_ERRORS = {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied", "invalid_scope"}
# Errors saying the account itself is unusable (held or blocked by the platform): broken at once.
BROKEN_ERRORS = {"account_restricted"}


class OAuthFlowError(ApplicationError):
    """A callback that cannot complete: unknown or expired state, refused code, provider error."""

    status_code = 400
    code = "oauth_failed"


def _event(connection: Connection, kind: str, *, actor_id: int | None = None, detail: str = "") -> None:
    ConnectionEvent.objects.create(
        agency_id=connection.agency_id, connection=connection, kind=kind, actor_id=actor_id, detail=detail[:2000]
    )


def _expiry(seconds: Any):
    try:
        seconds = int(seconds)
    except (TypeError, ValueError):
        return None
    return timezone.now() + timedelta(seconds=seconds) if seconds > 0 else None


def _scopes(token: dict, provider: providers.Provider) -> list[str]:
    granted = token.get("scope") or token.get("permissions") or ""
    if isinstance(granted, list):
        return [str(s) for s in granted]
    parts = str(granted).replace(",", " ").split()
    return parts or list(provider.scopes)


def redirect_uri() -> str:
    """The one callback every provider sends the browser back to (registered with each provider)."""
    return settings.SITE_URL + reverse("integrations:oauth-callback")


# --- OAuth: connect and reconnect -----------------------------------------------------------------


def oauth_start(*, membership: Membership, creator: Creator, platform: str, session) -> str:
    """Remember a fresh state and PKCE verifier in the browser's session; answer the provider's
    authorization URL to send the browser to."""
    require(membership, Perm.EDIT, creator)
    if platform not in OAUTH_PLATFORMS:
        raise ApplicationError("This platform is not connected through a sign-in.", field="platform")
    provider = providers.provider_for(platform)
    if provider is None or not provider.configured:
        raise ApplicationError(
            "This platform is not configured by the operator yet: no client id and secret are set.", field="platform"
        )
    state = generate_token(32)
    verifier = generate_token(64)
    pending = {
        key: value for key, value in session.get(SESSION_OAUTH, {}).items() if value.get("expires", 0) > time.time()
    }
    while len(pending) >= MAX_PENDING_STATES:
        pending.pop(min(pending, key=lambda key: pending[key]["expires"]))
    pending[state] = {
        "platform": platform,
        "creator_id": creator.pk,
        "agency_id": membership.agency_id,
        "verifier": verifier,
        "expires": time.time() + settings.INTEGRATIONS_OAUTH_STATE_SECONDS,
    }
    session[SESSION_OAUTH] = pending
    return providers.authorization_url(provider, redirect_uri=redirect_uri(), state=state, code_verifier=verifier)


def oauth_pending_pop(*, session, state: str) -> dict:
    """The pending sign-in ``state`` names, removed from the session (a state is good once)."""
    pending = dict(session.get(SESSION_OAUTH, {}))
    found = pending.pop(state, None) if state else None
    session[SESSION_OAUTH] = pending
    if found is None:
        raise OAuthFlowError(
            "This sign-in link is unknown or was already used. Start again from the integrations page."
        )
    if found.get("expires", 0) <= time.time():
        raise OAuthFlowError("This sign-in took too long and expired. Start again from the integrations page.")
    return found


def oauth_complete(*, membership: Membership, creator: Creator, pending: dict, code: str) -> Connection:
    """Exchange the code (with the stored verifier) and store the tokens; nothing is stored when
    the provider refuses."""
    require(membership, Perm.EDIT, creator)
    platform = pending["platform"]
    provider = providers.provider_for(platform)
    if provider is None or not provider.configured:
        raise OAuthFlowError("This platform is no longer configured by the operator.")
    if not code:
        raise OAuthFlowError("The platform sent no authorization code back. Start again from the integrations page.")
    try:
        token = providers.exchange_code(
            provider, redirect_uri=redirect_uri(), code=code, code_verifier=pending["verifier"]
        )
    except OAuthError as error:
        logger.warning("integrations.oauth.exchange_refused", extra={"platform": platform, "error": error.error})
        raise OAuthFlowError(
            f"{provider_label(platform)} refused the sign-in ({error.error}). Start again from the integrations page."
        ) from None
    except (requests.RequestException, ValueError) as error:
        logger.warning(
            "integrations.oauth.exchange_failed", extra={"platform": platform, "error": type(error).__name__}
        )
        raise OAuthFlowError(
            f"{provider_label(platform)} could not be reached to finish the sign-in. Try again in a few minutes."
        ) from None
    if not token.get("access_token"):
        raise OAuthFlowError(f"{provider_label(platform)} answered without an access token.")
    if platform == Platform.INSTAGRAM:
        token = _instagram_long_lived(provider, token)
    with transaction.atomic():
        connection, _ = Connection.objects.select_for_update().get_or_create(
            creator=creator, platform=platform, defaults={"agency_id": creator.agency_id}
        )
        connection.status = ConnectionStatus.CONNECTED
        connection.access_token = token["access_token"]
        connection.refresh_token = token.get("refresh_token", "") or ""
        connection.access_expires_at = _expiry(token.get("expires_in"))
        connection.refresh_expires_at = _expiry(token.get("refresh_expires_in"))
        connection.scopes = _scopes(token, provider)
        connection.external_account_id = str(token.get("open_id") or token.get("user_id") or "")[:128]
        connection.last_error = ""
        connection.refresh_failures = 0
        connection.connected_by_id = membership.user_id
        connection.is_simulated = False  # a real sign-in replaces the demo's simulated account
        connection.save()
        _event(connection, ConnectionEventKind.CONNECTED, actor_id=membership.user_id, detail="Signed in with OAuth.")
    return connection


def _instagram_long_lived(provider: providers.Provider, token: dict) -> dict:
    """The sign-in's answer with its short-lived token (1 hour, never refreshable) replaced by
    the long-lived one; the account id and permissions of the sign-in are kept."""
    try:
        long_lived = providers.instagram_exchange(provider, access_token=token["access_token"])
    except OAuthError as error:
        logger.warning("integrations.oauth.exchange_refused", extra={"platform": "instagram", "error": error.error})
        raise OAuthFlowError(
            f"Instagram refused to exchange the sign-in for a long-lived token ({error.error}). "
            "Start again from the integrations page."
        ) from None
    except (requests.RequestException, ValueError) as error:
        logger.warning(
            "integrations.oauth.exchange_failed", extra={"platform": "instagram", "error": type(error).__name__}
        )
        raise OAuthFlowError(
            "Instagram could not be reached to finish the sign-in (long-lived token). Try again in a few minutes."
        ) from None
    return {**token, "access_token": long_lived["access_token"], "expires_in": long_lived.get("expires_in")}


def provider_label(platform: str) -> str:
    from apps.integrations.models import Platform

    return dict(Platform.choices).get(platform, platform)


# --- Third-party API accounts (OnlyFans, Fansly) ----------------------------------------------------


def api_connection_configure(
    *, membership: Membership, creator: Creator, platform: str, api_base_url: str, api_key: str, api_account_id: str
) -> tuple[Connection, str]:
    """Store the third-party API account of a creator; answers the connection and the webhook
    secret, shown to the member once (it is stored encrypted and never shown again)."""
    require(membership, Perm.EDIT, creator)
    require_verified(membership.user)
    if platform not in API_PLATFORMS:
        raise ApplicationError("Only OnlyFans and Fansly are connected through a third-party API.", field="platform")
    if not api_key.strip():
        raise ApplicationError("Enter the API key.", field="api_key")
    webhook_secret = "whsec_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        connection, _ = Connection.objects.select_for_update().get_or_create(
            creator=creator, platform=platform, defaults={"agency_id": creator.agency_id}
        )
        connection.status = ConnectionStatus.CONNECTED
        connection.api_base_url = api_base_url
        connection.api_key = api_key.strip()
        connection.api_account_id = api_account_id.strip()
        connection.webhook_secret = webhook_secret
        connection.is_simulated = False
        connection.last_error = ""
        connection.refresh_failures = 0
        connection.connected_by_id = membership.user_id
        connection.save()
        _event(
            connection, ConnectionEventKind.CONNECTED, actor_id=membership.user_id,
            detail="Third-party API account saved; a new webhook secret was issued.",
        )  # fmt: skip
    return connection, webhook_secret


# --- Disconnect ------------------------------------------------------------------------------------


def connection_disconnect(*, membership: Membership, connection: Connection) -> Connection:
    require(membership, Perm.EDIT, connection.creator)
    with transaction.atomic():
        connection.status = ConnectionStatus.DISCONNECTED
        for secret in ("access_token", "refresh_token", "api_key", "webhook_secret"):
            setattr(connection, secret, "")
        connection.access_expires_at = None
        connection.refresh_expires_at = None
        connection.scopes = []
        connection.save()
        _event(connection, ConnectionEventKind.DISCONNECTED, actor_id=membership.user_id, detail="Credentials wiped.")
    return connection


# --- Refresh -------------------------------------------------------------------------------------


def connections_due_for_refresh(*, now=None) -> list[int]:
    """Ids of connected OAuth connections whose access token expires within the window (with a
    refresh token, or Instagram's long-lived token, refreshed by itself)."""
    now = now or timezone.now()
    horizon = now + timedelta(seconds=settings.INTEGRATIONS_REFRESH_WINDOW_SECONDS)
    return list(
        Connection.objects.filter(
            status=ConnectionStatus.CONNECTED,
            platform__in=OAUTH_PLATFORMS,
            access_expires_at__isnull=False,
            access_expires_at__lte=horizon,
        )
        .exclude(Q(refresh_token="") & (~Q(platform=Platform.INSTAGRAM) | Q(access_token="")))
        .order_by("access_expires_at")
        .values_list("pk", flat=True)
    )


REFRESH_LEASE_SECONDS = 120  # longer than a refresh's requests take; a lost worker's lease expires


def connection_refresh(*, connection_id: int) -> str:
    """Refresh one connection's tokens. Answers "refreshed", "needs_reconnect", "broken", "retry"
    (a transient failure) or "skipped" (no longer connected, nothing to refresh with, another
    worker refreshing it now, or its credentials replaced while this refresh was on its way).

    One refresh per connection at a time (a lease in the shared state): the sweep can queue a
    connection again while an earlier task for it waits, and a provider that rotates refresh
    tokens (TikTok) refuses the second use of one, which read alone would mark a healthy
    connection "needs reconnect". A failure also changes the connection only while it still holds
    the credentials the refresh used (``_holds``): a reconnect meanwhile wins."""
    lease = f"integrations:refresh:{connection_id}"
    state = shared_state()
    if not state.swap_record_sync(lease, None, {"since": time.time()}, ttl=REFRESH_LEASE_SECONDS):
        return "skipped"
    try:
        return _refresh(connection_id)
    finally:
        state.delete_sync(lease)


def _refresh(connection_id: int) -> str:
    connection = Connection.objects.select_related("creator").filter(pk=connection_id).first()
    if connection is None or connection.status != ConnectionStatus.CONNECTED:
        return "skipped"
    by_access_token = connection.platform == Platform.INSTAGRAM and not connection.refresh_token
    used = connection.access_token if by_access_token else connection.refresh_token
    if not used:
        return "skipped"
    provider = providers.provider_for(connection.platform)
    if not by_access_token and (provider is None or not provider.configured):
        return "skipped"
    try:
        if by_access_token:
            token = providers.instagram_refresh(access_token=used)
        else:
            token = providers.refresh(provider, refresh_token=used)
    except OAuthError as error:
        held = (by_access_token, used)
        if error.error in PERMANENT_ERRORS:
            return "needs_reconnect" if _refresh_refused(connection, error.error, held=held) else "skipped"
        if error.error in BROKEN_ERRORS:
            reason = f"{provider_label(connection.platform)} holds or blocks this account "
            return "broken" if _mark_broken(connection, f"{reason}({error.description or error.error}).",
                                            held=held) else "skipped"  # fmt: skip
        return _refresh_transient(connection, f"{error.error}", held=held)
    except (requests.RequestException, ValueError) as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        reason = f"HTTP {status}" if status else type(error).__name__
        return _refresh_transient(connection, reason, held=(by_access_token, used))
    with transaction.atomic():
        current = Connection.objects.select_for_update().get(pk=connection.pk)
        still = current.access_token if by_access_token else current.refresh_token
        if current.status != ConnectionStatus.CONNECTED or still != used:
            return "skipped"  # disconnected or reconnected meanwhile: the newer credentials win
        current.access_token = token["access_token"]
        if not by_access_token:
            current.refresh_token = token.get("refresh_token") or used  # rotating providers send a new one
        current.access_expires_at = _expiry(token.get("expires_in"))
        if token.get("refresh_expires_in") is not None:
            current.refresh_expires_at = _expiry(token.get("refresh_expires_in"))
        current.last_error = ""
        current.refresh_failures = 0
        current.save()
        _event(current, ConnectionEventKind.REFRESHED)
    return "refreshed"


def _holds(connection_id: int, held: tuple[bool, str] | None) -> bool:
    """Inside the caller's transaction, with the row locked: whether the connection is still
    connected with the credentials a refresh used (``held``: (by access token, the token)); True
    when there is nothing to compare. Tokens are compared decrypted, here: each write encrypts
    with a new nonce, so the stored bytes differ even for the same token."""
    if held is None:
        return True
    current = Connection.objects.select_for_update().filter(pk=connection_id).first()
    if current is None or current.status != ConnectionStatus.CONNECTED:
        return False
    by_access_token, used = held
    return (current.access_token if by_access_token else current.refresh_token) == used


def _refresh_transient(connection: Connection, reason: str, *, held: tuple[bool, str] | None = None) -> str:
    """Record a failure that may pass; answers "retry", "broken" once too many came in a row, or
    "skipped" when the connection no longer holds the credentials that failed."""
    message = f"Token refresh failed temporarily ({reason}); it will be tried again."
    with transaction.atomic():
        if not _holds(connection.pk, held):
            return "skipped"
        Connection.objects.filter(pk=connection.pk).update(
            last_error=message, refresh_failures=F("refresh_failures") + 1
        )
    _event(connection, ConnectionEventKind.REFRESH_FAILED, detail=message)
    logger.info("integrations.refresh.transient", extra={"connection_id": connection.pk, "reason": reason})
    failures = Connection.objects.filter(pk=connection.pk).values_list("refresh_failures", flat=True).first() or 0
    if failures >= settings.INTEGRATIONS_BROKEN_AFTER_FAILURES:
        label = provider_label(connection.platform)
        _mark_broken(connection, f"{label} failed {failures} token refreshes in a row (last: {reason}).")
        return "broken"
    return "retry"


def _mark_broken(connection: Connection, reason: str, *, held: tuple[bool, str] | None = None) -> bool:
    """Connected → broken, with the reason and how to fix it; the owners are told once (only the
    write that changes the status notifies). Answers whether it changed the connection."""
    message = (
        f"{reason} Huntaze stopped using this connection. Check the account on the platform and the "
        "operator's client settings, then press Reconnect."
    )
    with transaction.atomic():
        changed = _holds(connection.pk, held) and Connection.objects.filter(
            pk=connection.pk, status=ConnectionStatus.CONNECTED
        ).update(status=ConnectionStatus.BROKEN, last_error=message)
        if not changed:
            return False
        _event(connection, ConnectionEventKind.REFRESH_FAILED, detail=message)
        url = reverse("integrations:creator", kwargs={"creator_id": connection.creator_id})
        label = provider_label(connection.platform)
        for owner in member_list(agency_id=connection.agency_id).filter(role=Role.OWNER):
            notification_send(
                membership=owner,
                title=f"{connection.creator.display_name} on {label} is broken",
                body=message,
                url=url,
                level=Notification.Level.ERROR,
            )
    logger.warning("integrations.refresh.broken", extra={"connection_id": connection.pk})
    return True


def _refresh_refused(connection: Connection, reason: str, *, held: tuple[bool, str] | None = None) -> bool:
    """Connected → needs reconnect, the owners told once; answers whether it changed the connection."""
    label = provider_label(connection.platform)
    message = f"{label} refused to refresh the sign-in ({reason}). An owner or manager must reconnect."
    with transaction.atomic():
        changed = _holds(connection.pk, held) and Connection.objects.filter(
            pk=connection.pk, status=ConnectionStatus.CONNECTED
        ).update(status=ConnectionStatus.NEEDS_RECONNECT, last_error=message)
        if not changed:
            return False
        _event(connection, ConnectionEventKind.REFRESH_FAILED, detail=message)
        url = reverse("integrations:creator", kwargs={"creator_id": connection.creator_id})
        for owner in member_list(agency_id=connection.agency_id).filter(role=Role.OWNER):
            notification_send(
                membership=owner,
                title=f"Reconnect {connection.creator.display_name} on {label}",
                body=message,
                url=url,
                level=Notification.Level.WARNING,
            )
    logger.warning("integrations.refresh.refused", extra={"connection_id": connection.pk, "reason": reason})
    return True
