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

A channel that fails is logged and does not stop the others.

A firing is told at least once: ``dispatch`` notes ``dispatched_at`` when it has told people of
it (and tells nobody again once it is set), and beat's ``redispatch_alerts`` (``redispatch()``)
queues again every firing alert still without it a minute after it fired (a broker that refused
the task, a worker that died running it). A resolution is told once, on a best-effort basis.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Membership, Role
from apps.core.events import publish
from apps.monitoring.models import Alert
from apps.notifications.models import Notification, NotificationKind
from apps.notifications.preferences import email_wanted
from apps.notifications.services import notification_send

logger = logging.getLogger(__name__)
ALERTS = NotificationKind.ALERTS.value  # members' preference for alerts governs their alert email
REDISPATCH_AFTER = timedelta(minutes=1)  # a firing not told by then is queued again …
REDISPATCH_WITHIN = timedelta(days=1)  # … unless it is older than this (a page a day late helps nobody)


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
    transaction.on_commit(lambda: queue_dispatch(alert.pk, "alert.fired"))
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
        transaction.on_commit(lambda: queue_dispatch(alert.pk, "alert.resolved"))
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
    """Queue again the firing alerts nobody was told of (see the module docstring); answers how
    many were queued."""
    now = now or timezone.now()
    pending = Alert.objects.filter(
        state=Alert.State.FIRING,
        dispatched_at__isnull=True,
        fired_at__lte=now - REDISPATCH_AFTER,
        fired_at__gte=now - REDISPATCH_WITHIN,
    ).order_by("fired_at", "id")
    alert_ids = list(pending.values_list("pk", flat=True)[:500])
    for alert_id in alert_ids:
        queue_dispatch(alert_id, "alert.fired")
    return len(alert_ids)


def dispatch(alert: Alert, event: str) -> None:
    """Tell people about a fired or resolved alert: in the app, by email, by signed webhook. A
    firing already told (a queued copy of the same event, or a redispatch) is not told again."""
    if event == "alert.fired" and alert.dispatched_at is not None:
        return
    memberships, emails = recipients(alert)
    for channel, send in (
        ("in-app", lambda: _notify(alert, event, memberships)),
        ("email", lambda: _email(alert, event, emails)),
        ("webhook", lambda: _queue_webhooks(alert, event)),
    ):
        try:
            send()
        except Exception:  # one channel's failure must not silence the others
            logger.exception("alert %s: %s by %s failed", alert.pk, event, channel)
    if event == "alert.fired":
        Alert.objects.filter(pk=alert.pk, dispatched_at__isnull=True).update(dispatched_at=timezone.now())


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
    if event == "alert.resolved":
        return f"Resolved: {alert.title}"
    return f"{alert.get_severity_display()}: {alert.title}"


def _link(alert: Alert) -> str:
    return reverse("monitoring:overview") if alert.agency_id is None else ""


def _notify(alert: Alert, event: str, memberships: list[Membership]) -> None:
    if event == "alert.resolved":
        level = Notification.Level.SUCCESS
    elif alert.severity == Alert.Severity.PAGE:
        level = Notification.Level.ERROR
    else:
        level = Notification.Level.WARNING
    for membership in memberships:
        notification_send(
            membership=membership, title=_headline(alert, event), body=alert.detail, url=_link(alert), level=level,
            kind=ALERTS, email=False,  # _email below sends the alert's own email to those who want it
        )  # fmt: skip


def _email(alert: Alert, event: str, emails: list[str]) -> None:
    if not emails:
        return
    link = _link(alert)
    lines = [alert.detail, "", f"Fired at: {alert.fired_at:%Y-%m-%d %H:%M:%S} UTC"]
    if alert.resolved_at:
        lines.append(f"Resolved at: {alert.resolved_at:%Y-%m-%d %H:%M:%S} UTC")
    if link:
        lines.append(f"Monitoring: {settings.SITE_URL.rstrip('/')}{link}")
    subject = f"[Huntaze] {_headline(alert, event)}"[:200]
    body = "\n".join(lines)
    # One message per address: recipients of different agencies never see each other.
    send_mass_mail([(subject, body, settings.DEFAULT_FROM_EMAIL, [email]) for email in emails])


def _queue_webhooks(alert: Alert, event: str) -> None:
    from apps.monitoring.tasks import deliver_alert_webhook
    from apps.monitoring.webhooks import webhooks_for

    for webhook_id in webhooks_for(alert).values_list("pk", flat=True):
        deliver_alert_webhook.delay(webhook_id, alert.pk, event)
