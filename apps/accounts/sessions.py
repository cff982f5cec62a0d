"""A user's active sessions: record them, list them, end one or all of them.

The session itself (who is logged in) lives in Django's session store (``SESSION_ENGINE``); a
``UserSession`` row holds what the user needs to recognise it (started, last seen, address,
browser). It is written at login (``session_started``, on Django's ``user_logged_in``) and then by
``SessionActivityMiddleware`` (apps/accounts/middleware.py) at most every ``TOUCH_INTERVAL``, so
an ordinary page costs no extra query. Ending a session deletes it from the store, which logs that browser out
on its next request, and closes its open websockets at once (apps/accounts/realtime.py); the row
goes with it.

Rows whose session has gone by itself (expired, logged out, key cycled at a password change)
are left out of the user's list and deleted the next time one of their sessions starts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import Http404, HttpRequest
from django.utils import timezone

from apps.accounts.models import User, UserSession
from apps.accounts.realtime import sockets_close_for_sessions

logger = logging.getLogger(__name__)

TOUCH_INTERVAL = timedelta(minutes=5)
SESSION_SEEN = "huntaze_session_seen"


def _store(session_key: str | None = None) -> SessionBase:
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def session_alive(session_key: str) -> bool:
    """Whether the session is still in the store (not ended, logged out or expired)."""
    return _store().exists(session_key)


# --- Writes ----------------------------------------------------------------------------------


def user_session_touch(
    *, user: User, session: SessionBase, ip_address: str | None, user_agent: str, now: datetime | None = None
) -> bool:
    """Record that ``session`` was used now, unless that was already recorded within
    ``TOUCH_INTERVAL``. Returns whether the row was written."""
    now = now or timezone.now()
    if session.session_key is None:
        session.save()
    # The key is remembered with the time: a key cycled at login or password change is new.
    seen_key, seen_at = session.get(SESSION_SEEN) or (None, 0)
    if seen_key == session.session_key and now.timestamp() - seen_at < TOUCH_INTERVAL.total_seconds():
        return False
    _, created = UserSession.objects.update_or_create(
        session_key=session.session_key,
        defaults={"user": user, "last_seen_at": now, "ip_address": ip_address or None, "user_agent": user_agent[:300]},
    )
    session[SESSION_SEEN] = [session.session_key, now.timestamp()]
    if created:
        _drop_gone(user=user)
    return True


def session_started(sender: type, request: HttpRequest, user: User, **kwargs: object) -> None:
    """Receiver of ``user_logged_in``: record the new session at once (it is written again only
    after ``TOUCH_INTERVAL``)."""
    if getattr(request, "session", None) is not None:
        user_session_touch(
            user=user,
            session=request.session,
            ip_address=request.META.get("REMOTE_ADDR"),
            user_agent=request.headers.get("User-Agent", ""),
        )


def user_session_end(*, user: User, user_session: UserSession) -> None:
    """Log one of the user's sessions out: delete it from the store, and its row."""
    _store().delete(user_session.session_key)
    user_session.delete()
    sockets_close_for_sessions([user_session.session_key])
    logger.info("session %s of user %s ended by the user", user_session.pk, user.pk)


def user_sessions_end_all(*, user: User, keep: str | None = None) -> int:
    """Log the user out of every session except ``keep`` (a session key), or all of them.
    Returns how many were ended."""
    rows = list(UserSession.objects.filter(user=user).exclude(session_key=keep or ""))
    store = _store()
    for row in rows:
        store.delete(row.session_key)
    UserSession.objects.filter(pk__in=[row.pk for row in rows]).delete()
    sockets_close_for_sessions([row.session_key for row in rows])
    logger.info("user %s ended %d sessions (%s)", user.pk, len(rows), "all" if keep is None else "all but this one")
    return len(rows)


def session_ended(sender: type, request: HttpRequest | None, user: User | None, **kwargs: object) -> None:
    """Receiver of ``user_logged_out``: the websockets of the session that logged out close too."""
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        sockets_close_for_sessions([session.session_key])


def _drop_gone(*, user: User) -> None:
    gone = [row.pk for row in UserSession.objects.filter(user=user) if not session_alive(row.session_key)]
    if gone:
        UserSession.objects.filter(pk__in=gone).delete()


# --- Reads -----------------------------------------------------------------------------------


def user_session_list(*, user: User) -> list[UserSession]:
    """The user's sessions that are still in the store, most recently used first (one store
    lookup per row: a user has a handful)."""
    rows = list(UserSession.objects.filter(user=user).order_by("-last_seen_at"))
    return [row for row in rows if session_alive(row.session_key)]


def user_session_get_for_user(*, user: User, session_id: int) -> UserSession:
    """One of the user's sessions; another user's, or a missing id, is a 404 alike."""
    row = UserSession.objects.filter(user=user, pk=session_id).first()
    if row is None:
        raise Http404("No such session.")
    return row


_BROWSERS = [("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
_SYSTEMS = [
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
]


def user_agent_label(user_agent: str) -> str:
    """ "Firefox on Linux" from a User-Agent header: enough to recognise one's own devices."""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), "")
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"
