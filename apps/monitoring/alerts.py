"""Alerts: fire once per key, resolve, and tell people.

``fire()`` opens an alert unless one with the same key is already firing (deduplicated by the
``alert_one_firing_per_key`` constraint, so two processes evaluating at once open one);
``resolve()`` closes the firing alert of a key. Both answer the alert they changed, or None when
nothing changed, and queue the change for ``dispatch`` after the transaction commits: the
``dispatch_alert`` task (default queue) tells people, so the code that fired the alert (an AI
request crossing a budget threshold, the SLO evaluation) never waits for notifications, SMTP or
webhooks.

``dispatch()`` tells people, once per fired or resolved alert (never per evaluation):

- service alerts (no agency: SLO burn rates) reach the operators, the active staff users: an
  in-app notification in each agency they are a member of (pushed live to their open tabs over
  the notifications websocket), and an email (staff without a membership get the email only),
  plus the addresses in MONITORING_ALERT_EMAILS;
- an agency's alerts (its AI budget) reach that agency's owners and managers, in the app and by
  email;
- every enabled webhook for the alert's scope (agency-less webhooks for service alerts, the
  agency's own for its alerts) gets a signed POST from a Celery task (apps/monitoring/webhooks.py).

A firing and a resolution are each told to everyone, and to each of them once:

- ``dispatch`` notes on the alert (``told``) each member, address (a digest of it) and webhook as
  soon as it has been told of the event, and skips those already noted: a queued copy of the
  event, a retry or a redispatch tells only the others. A member's in-app notification commits
  with its note, so it is never shown twice;
- a recipient that fails (the mail server down, the database) is logged, does not stop the others
  and stays untold: ``dispatch`` then raises the first failure, which the ``dispatch_alert`` task
  retries with backoff when it is a database or network error. Only an address the mail server
  refuses for good (a 5xx answer to it) counts as told, since no retry would reach it;
- once nobody is left, the event is marked told (``dispatched_at``, ``resolution_dispatched_at``)
  and nobody hears of it again; beat's ``redispatch_alerts`` (``redispatch()``) queues again every
  firing and every resolution still unmarked a minute after it happened, up to a day after (a
  broker that refused the task, a worker that died running it, retries used up);
- one dispatch of an alert runs at a time (a lease in the shared state), since the sweep may
  queue an event again while an earlier task for it waits for its retry. A dispatch that finds
  the lease taken leaves the event to the sweep.
"""

from __future__ import annotations

import logging
import smtplib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from apps.accounts.models import Membership, Role
from apps.core.events import publish
from apps.core.shared import shared_state
from apps.monitoring.models import Alert
from apps.notifications.models import Notification, NotificationKind
from apps.notifications.preferences import email_wanted
from apps.notifications.services import notification_send

logger = logging.getLogger(__name__)
ALERTS = NotificationKind.ALERTS.value  # members' preference for alerts governs their alert email
REDISPATCH_AFTER = timedelta(minutes=1)  # a firing or resolution not told by then is queued again …
REDISPATCH_WITHIN = timedelta(days=1)  # … unless it is older than this (a page a day late helps nobody)
DISPATCH_LEASE_SECONDS = 300  # longer than telling everyone takes; a lost worker's lease expires
FIRED, RESOLVED = "alert.fired", "alert.resolved"
TOLD_FIELD = {FIRED: "dispatched_at", RESOLVED: "resolution_dispatched_at"}


def firing(key: str) -> Alert | None:
    return Alert.objects.filter(key=key, state=Alert.State.FIRING).first()


def fire(
    key: str,
    *,
    kind: str,
    severity: str,
    title: str,
    detail: str = "",
    agency_id: int | None = None,
    slo_id: int | None = None,
    budget_id: int | None = None,
    values: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Alert | None:
    """Open an alert for ``key`` unless one is firing; answers the new alert, or None."""
    now = now or timezone.now()
    current = firing(key)
    if current is not None:
        current.last_evaluated_at = now
        current.values = values or current.values
        current.save(update_fields=["last_evaluated_at", "values"])
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                key=key[:200], kind=kind, severity=severity, title=title[:200], detail=detail,
                agency_id=agency_id, slo_id=slo_id, budget_id=budget_id, values=values or {},
                fired_at=now, last_evaluated_at=now,
            )  # fmt: skip
            if agency_id is not None:  # an agency's alert, for its subscribers such as CRM webhooks
                publish(
                    "alert.fired", agency_id=agency_id,
                    payload={"alert_id": alert.pk, "key": alert.key, "kind": alert.kind, "severity": alert.severity,
                             "title": alert.title, "detail": alert.detail[:2000], "fired_at": now.isoformat()},
                )  # fmt: skip
    except IntegrityError:  # another process opened it a moment ago
        return None
    transaction.on_commit(lambda: queue_dispatch(alert.pk, FIRED))
    return alert


def resolve(key: str, *, now: datetime | None = None, values: dict[str, Any] | None = None) -> Alert | None:
    """Close the firing alert of ``key``; answers it, or None when none was firing."""
    now = now or timezone.now()
    updated = Alert.objects.filter(key=key, state=Alert.State.FIRING).update(
        state=Alert.State.RESOLVED, resolved_at=now, last_evaluated_at=now
    )
    if not updated:
        return None
    alert = Alert.objects.filter(key=key, state=Alert.State.RESOLVED).order_by("-resolved_at", "-id").first()
    if alert is not None:
        if values:
            alert.values = values
            alert.save(update_fields=["values"])
        transaction.on_commit(lambda: queue_dispatch(alert.pk, RESOLVED))
    return alert


def queue_dispatch(alert_id: int, event: str) -> None:
    """Hand an alert event to the ``dispatch_alert`` task; a broker that cannot take it is logged
    (the alert itself is saved and shows on the pages) rather than failing the caller."""
    from apps.monitoring.tasks import dispatch_alert

    try:
        dispatch_alert.delay(alert_id, event)
    except Exception:
        logger.exception("alert %s: could not queue %s", alert_id, event)


def redispatch(*, now: datetime | None = None) -> int:
    """Queue again the firings and resolutions not yet told to everyone (see the module
    docstring); answers how many were queued."""
    now = now or timezone.now()
    since, until = now - REDISPATCH_WITHIN, now - REDISPATCH_AFTER
    firings = Alert.objects.filter(
        state=Alert.State.FIRING, dispatched_at__isnull=True, fired_at__lte=until, fired_at__gte=since
    ).order_by("fired_at", "id")
    resolutions = Alert.objects.filter(
        state=Alert.State.RESOLVED, resolution_dispatched_at__isnull=True, resolved_at__lte=until,
        resolved_at__gte=since,
    ).order_by("resolved_at", "id")  # fmt: skip
    pending = [(pk, FIRED) for pk in firings.values_list("pk", flat=True)[:500]]
    pending += [(pk, RESOLVED) for pk in resolutions.values_list("pk", flat=True)[:500]]
    for alert_id, event in pending:
        queue_dispatch(alert_id, event)
    return len(pending)


def dispatch(alert: Alert, event: str) -> None:
    """Tell people about a fired or resolved alert: in the app, by email, by signed webhook; each
    recipient once, however many copies, retries and redispatches of the event run (see the
    module docstring). Raises the first recipient's failure when some are left to tell."""
    lease = f"monitoring:alert-dispatch:{alert.pk}"
    state = shared_state()
    if not state.swap_record_sync(lease, None, {"event": event, "since": time.time()}, ttl=DISPATCH_LEASE_SECONDS):
        return  # another worker is telling this alert; what it leaves untold, the sweep queues again
    try:
        _dispatch(alert.pk, event)
    finally:
        state.delete_sync(lease)


def _dispatch(alert_id: int, event: str) -> None:
    alert = Alert.objects.filter(pk=alert_id).first()  # read under the lease: ``told`` as it is now
    if alert is None or getattr(alert, TOLD_FIELD[event]) is not None:
        return
    from apps.monitoring.tasks import deliver_alert_webhook
    from apps.monitoring.webhooks import webhooks_for

    memberships, emails = recipients(alert)
    channels: dict[str, dict[int | str, Callable[[], object]]] = {
        "in-app": {m.pk: lambda m=m: _notify(alert, event, m) for m in memberships},
        "email": {_email_key(email): lambda email=email: _email(alert, event, email) for email in emails},
        "webhook": {
            pk: lambda pk=pk: deliver_alert_webhook.delay(pk, alert.pk, event)
            for pk in webhooks_for(alert).values_list("pk", flat=True)
        },
    }
    told: dict[str, list] = alert.told.get(event, {})
    failures: list[Exception] = []
    for channel, targets in channels.items():
        for target, send in targets.items():
            if target in told.get(channel, []):
                continue
            noted = {**told, channel: [*told.get(channel, []), target]}
            try:
                with transaction.atomic():  # an in-app notification and its note commit together
                    send()
                    Alert.objects.filter(pk=alert.pk).update(told={**alert.told, event: noted})
            except Exception as failure:  # one recipient's failure must not silence the others
                logger.exception("alert %s: %s by %s failed", alert.pk, event, channel)
                failures.append(failure)
                continue
            told = alert.told[event] = noted
    if failures:
        raise failures[0]
    Alert.objects.filter(pk=alert.pk, **{f"{TOLD_FIELD[event]}__isnull": True}).update(
        **{TOLD_FIELD[event]: timezone.now()}
    )


def recipients(alert: Alert) -> tuple[list[Membership], list[str]]:
    """Who hears of ``alert``: the memberships to notify in the app and the email addresses."""
    if alert.agency_id is None:
        staff = (
            get_user_model()
            .objects.filter(is_staff=True, is_active=True)
            .prefetch_related(Prefetch("memberships", queryset=Membership.objects.order_by("id")))
            .order_by("id")
        )
        memberships = [membership for user in staff for membership in user.memberships.all()]
        wanted = email_wanted(user_ids=[user.pk for user in staff], kind=ALERTS)
        emails = [user.email for user in staff if user.email and user.pk in wanted]
        emails += list(settings.MONITORING_ALERT_EMAILS)
    else:
        memberships = list(
            Membership.objects.filter(
                agency_id=alert.agency_id, role__in=[Role.OWNER, Role.MANAGER], user__is_active=True
            ).select_related("user")
        )
        wanted = email_wanted(user_ids=[membership.user_id for membership in memberships], kind=ALERTS)
        emails = [m.user.email for m in memberships if m.user.email and m.user_id in wanted]
    return memberships, list(dict.fromkeys(emails))


def _headline(alert: Alert, event: str) -> str:
    if event == RESOLVED:
        return f"Resolved: {alert.title}"
    return f"{alert.get_severity_display()}: {alert.title}"


def _link(alert: Alert) -> str:
    return reverse("monitoring:overview") if alert.agency_id is None else ""


def _notify(alert: Alert, event: str, membership: Membership) -> None:
    if event == RESOLVED:
        level = Notification.Level.SUCCESS
    elif alert.severity == Alert.Severity.PAGE:
        level = Notification.Level.ERROR
    else:
        level = Notification.Level.WARNING
    notification_send(
        membership=membership, title=_headline(alert, event), body=alert.detail, url=_link(alert), level=level,
        kind=ALERTS, email=False,  # _email below sends the alert's own email to those who want it
    )  # fmt: skip


def _email_key(email: str) -> str:
    """How ``told`` names an address: a keyed digest, so alerts keep no address of a member who
    has since deleted their account."""
    return salted_hmac("monitoring.alert-told", email).hexdigest()[:20]


def _email(alert: Alert, event: str, email: str) -> None:
    """One address's email, alone on its message: recipients of different agencies never see each
    other. An address the mail server refuses for good is logged and counts as told."""
    link = _link(alert)
    lines = [alert.detail, "", f"Fired at: {alert.fired_at:%Y-%m-%d %H:%M:%S} UTC"]
    if alert.resolved_at:
        lines.append(f"Resolved at: {alert.resolved_at:%Y-%m-%d %H:%M:%S} UTC")
    if link:
        lines.append(f"Monitoring: {settings.SITE_URL.rstrip('/')}{link}")
    subject = f"[Huntaze] {_headline(alert, event)}"[:200]
    try:
        send_mail(subject, "\n".join(lines), settings.DEFAULT_FROM_EMAIL, [email])
    except smtplib.SMTPRecipientsRefused as refused:
        answers = list(refused.recipients.values())
        if not all(code >= 500 for code, _ in answers):
            raise  # 4xx: the server asks to try again later
        logger.warning("alert %s: %s email refused by the mail server for good (%s)", alert.pk, event, answers[0][0])
