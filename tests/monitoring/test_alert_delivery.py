"""Alert delivery: in the app, by email, and by signed webhook to a loopback receiver that checks
the signature the way a customer's endpoint would, and can answer slowly or with errors."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.monitoring import alerts, webhooks
from apps.monitoring.models import Alert, AlertWebhook, WebhookAttempt
from apps.notifications.models import Notification
from tests.accounts.factories import MembershipFactory, UserFactory


class Receiver:
    """A webhook endpoint on 127.0.0.1. ``script`` says how to answer each request in turn:
    an HTTP status, "timeout" (answer only after the sender has given up), "drip" (headers a
    byte every 50 ms, each read quick, the whole answer slow) or "bad-gzip" (a 200 whose body
    claims gzip and is not)."""

    def __init__(self, secret: str = "") -> None:
        self.secret = secret
        self.script: list[int | str] = []
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                header = self.headers.get("Huntaze-Signature", "")
                receiver.received.append(
                    {"body": json.loads(body), "valid": receiver.signature_ok(header, body), "at": time.time()}
                )
                action = receiver.script.pop(0) if receiver.script else 200
                if action == "drip":
                    try:
                        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 40 + b"\r\nContent-Length: 0\r\n\r\n":
                            self.wfile.write(bytes([byte]))
                            time.sleep(0.05)
                    except OSError:  # the sender gave up
                        pass
                    self.close_connection = True
                    return
                if action == "bad-gzip":
                    self.send_response(200)
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", "12")
                    self.end_headers()
                    self.wfile.write(b"not gzip at all"[:12])
                    return
                if action == "timeout":
                    time.sleep(1.0)
                    action = 200
                self.send_response(int(action))
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/huntaze"

    def signature_ok(self, header: str, body: bytes) -> bool:
        """What a receiver does: recompute the HMAC of "t.body" and compare, and check freshness."""
        parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
        expected = hmac.new(self.secret.encode(), f"{parts.get('t')}.".encode() + body, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(parts.get("t", 0))) < 300
        return fresh and hmac.compare_digest(expected, parts.get("v1", ""))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_settings(settings):
    settings.MONITORING_WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    settings.MONITORING_WEBHOOK_TIMEOUT_SECONDS = 0.3
    settings.MONITORING_WEBHOOK_MAX_ATTEMPTS = 4
    settings.MONITORING_WEBHOOK_RETRY_BASE_SECONDS = 1
    settings.MONITORING_WEBHOOK_RETRY_MAX_SECONDS = 60
    settings.MONITORING_ALERT_EMAILS = ["oncall@example.com"]
    return settings


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def add_webhook(receiver: Receiver, agency_id: int | None = None) -> AlertWebhook:
    webhook, secret = webhooks.webhook_create(url=receiver.url, description="pager", agency_id=agency_id)
    receiver.secret = secret
    return webhook


def fire_service_alert(**extra) -> Alert:
    return alerts.fire(
        "slo:1:page-1h", kind="slo_burn", severity="page", title="API availability: burning 15x",
        detail="Burn rate 15x over 1 h.", values={"long_burn": 15.0}, **extra,
    )  # fmt: skip


def test_a_service_alert_reaches_operators_in_app_by_email_and_signed_webhook(
    world, webhook_settings, receiver, mailoutbox, eager_celery, django_capture_on_commit_callbacks
):
    operator = MembershipFactory(agency=world.agency, role="viewer", user=UserFactory(is_staff=True))
    staff_without_agency = UserFactory(is_staff=True)
    UserFactory(is_staff=True, is_active=False)  # gone: hears nothing
    webhook = add_webhook(receiver)

    with django_capture_on_commit_callbacks(execute=True):
        alert = fire_service_alert()

    notes = list(Notification.objects.all())
    assert [(n.user_id, n.level) for n in notes] == [(operator.user_id, "error")]
    assert notes[0].title.startswith("Page: API availability") and notes[0].url == "/monitoring/"
    assert world.owner.user_id not in {n.user_id for n in notes}  # members are not operators
    to = sorted(address for message in mailoutbox for address in message.to)
    assert to == sorted([operator.user.email, staff_without_agency.email, "oncall@example.com"])
    assert all(len(message.to) == 1 for message in mailoutbox)
    assert "Burn rate 15x" in mailoutbox[0].body

    [request] = receiver.received
    assert request["valid"], "the signature did not verify"
    body = request["body"]
    assert body["event"] == "alert.fired" and body["alert_id"] == alert.pk and body["key"] == "slo:1:page-1h"
    assert body["severity"] == "page" and body["values"] == {"long_burn": 15.0} and body["resolved_at"] is None
    [attempt] = WebhookAttempt.objects.filter(webhook=webhook)
    assert attempt.delivered and attempt.status_code == 200 and attempt.attempt == 1

    with django_capture_on_commit_callbacks(execute=True):
        alerts.resolve("slo:1:page-1h")
    assert receiver.received[-1]["body"]["event"] == "alert.resolved"
    assert receiver.received[-1]["body"]["resolved_at"] is not None
    assert Notification.objects.filter(level="success", title__startswith="Resolved:").count() == 1


def test_a_firing_alert_is_sent_once_however_often_it_is_evaluated(
    world, webhook_settings, receiver, mailoutbox, eager_celery, django_capture_on_commit_callbacks
):
    MembershipFactory(agency=world.agency, role="viewer", user=UserFactory(is_staff=True))
    add_webhook(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            fire_service_alert()
    assert Alert.objects.count() == 1
    assert len(receiver.received) == 1
    assert Notification.objects.count() == 1
    assert len(mailoutbox) == 2  # the operator and MONITORING_ALERT_EMAILS, once each


def test_an_agency_alert_reaches_its_owners_and_managers_and_its_own_webhooks(
    world, other_world, webhook_settings, receiver, mailoutbox, eager_celery, django_capture_on_commit_callbacks
):
    UserFactory(is_staff=True)
    agency_hook = add_webhook(receiver, agency_id=world.agency.pk)
    other = Receiver()
    try:
        webhooks.webhook_create(url=other.url, agency_id=other_world.agency.pk)
        webhooks.webhook_create(url=other.url)  # service alerts only
        with django_capture_on_commit_callbacks(execute=True):
            alerts.fire(
                f"budget:{world.agency.pk}:80", kind="budget", severity="warning", title="AI budget 80% used",
                agency_id=world.agency.pk,
            )  # fmt: skip
        assert other.received == []
    finally:
        other.stop()
    assert {n.user_id for n in Notification.objects.all()} == {world.owner.user_id, world.manager.user_id}
    assert all(n.agency_id == world.agency.pk for n in Notification.objects.all())
    assert sorted(a for m in mailoutbox for a in m.to) == sorted([world.owner.user.email, world.manager.user.email])
    assert [r["body"]["agency_id"] for r in receiver.received] == [world.agency.pk]
    assert WebhookAttempt.objects.get().webhook == agency_hook


def test_a_receiver_that_times_out_is_retried_with_backoff_and_every_attempt_is_logged(
    db, webhook_settings, receiver, eager_celery, django_capture_on_commit_callbacks
):
    webhook = add_webhook(receiver)
    receiver.script = ["timeout", 503, 200]
    with django_capture_on_commit_callbacks(execute=True):
        fire_service_alert()

    attempts = list(WebhookAttempt.objects.filter(webhook=webhook).order_by("attempt"))
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert attempts[0].error.startswith("Timed out") and attempts[0].status_code is None
    assert attempts[1].error == "HTTP 503" and attempts[1].status_code == 503
    assert attempts[2].delivered and attempts[2].error == ""
    # Backoff: each failed attempt says when the next one is due, within the exponential cap.
    for number, attempt in enumerate(attempts[:2], start=1):
        delay = (attempt.next_retry_at - attempt.created_at).total_seconds()
        assert 0 <= delay <= min(60, 1 * 2 ** (number - 1)) + 1
    assert attempts[2].next_retry_at is None
    assert len(receiver.received) == 3 and all(r["valid"] for r in receiver.received)
    assert len({r["body"]["id"] for r in receiver.received}) == 1  # one event id to deduplicate on


def test_retries_stop_after_the_last_attempt_and_a_4xx_is_not_retried(
    db, webhook_settings, receiver, eager_celery, django_capture_on_commit_callbacks
):
    webhook = add_webhook(receiver)
    receiver.script = [500, 500, 500, 500, 500]
    with django_capture_on_commit_callbacks(execute=True):
        fire_service_alert()
    attempts = list(WebhookAttempt.objects.filter(webhook=webhook).order_by("attempt"))
    assert len(attempts) == 4 and not any(a.delivered for a in attempts)
    assert attempts[-1].next_retry_at is None

    WebhookAttempt.objects.all().delete()
    receiver.script = [410]
    with django_capture_on_commit_callbacks(execute=True):
        alerts.resolve("slo:1:page-1h")
    [attempt] = WebhookAttempt.objects.all()
    assert attempt.status_code == 410 and attempt.next_retry_at is None


def test_private_addresses_are_refused_before_any_connection(
    db, webhook_settings, receiver, eager_celery, django_capture_on_commit_callbacks
):
    add_webhook(receiver)  # saved while private addresses were allowed
    webhook_settings.MONITORING_WEBHOOK_ALLOW_PRIVATE = False
    with django_capture_on_commit_callbacks(execute=True):
        fire_service_alert()
    [attempt] = WebhookAttempt.objects.all()
    assert attempt.error.startswith("Refused") and attempt.next_retry_at is None
    assert receiver.received == []

    from apps.ai.egress import RefusedURL

    for url in (receiver.url, "http://169.254.169.254/latest", "ftp://example.com/hook", "http://[::1]:9/x"):
        with pytest.raises(RefusedURL):
            webhooks.webhook_create(url=url)


def test_the_signature_helper_accepts_its_own_header_and_rejects_tampering():
    header = webhooks.signature_header("whsec_x", b'{"a":1}', timestamp=1_700_000_000)
    assert webhooks.verify("whsec_x", header, b'{"a":1}', now=1_700_000_010)
    assert not webhooks.verify("whsec_x", header, b'{"a":2}', now=1_700_000_010)
    assert not webhooks.verify("whsec_y", header, b'{"a":1}', now=1_700_000_010)
    assert not webhooks.verify("whsec_x", header, b'{"a":1}', now=1_700_000_000 + 3600)  # replayed later


def test_alert_emails_follow_each_members_preference_and_are_sent_once(
    world, mailoutbox, eager_celery, django_capture_on_commit_callbacks
):
    from apps.notifications import preferences

    preferences.preferences_set(
        user=world.manager.user, choices={"alerts": preferences.Channels(in_app=True, email=False)}
    )
    with django_capture_on_commit_callbacks(execute=True):
        alerts.fire(
            f"budget:{world.agency.pk}:90", kind="budget", severity="warning", title="AI budget 90% used",
            agency_id=world.agency.pk,
        )  # fmt: skip
    # The owner gets the alert's own email once (not a second, generic notification email); the
    # manager, who turned alert emails off, gets none but still sees it in the app.
    assert [m.to for m in mailoutbox] == [[world.owner.user.email]]
    assert mailoutbox[0].subject == "[Huntaze] Warning: AI budget 90% used"
    assert {n.user_id for n in Notification.objects.all()} == {world.owner.user_id, world.manager.user_id}
    assert set(Notification.objects.values_list("kind", flat=True)) == {"alerts"}


def test_a_firing_whose_dispatch_was_lost_is_sent_by_the_redispatch_sweep_once(
    world, webhook_settings, receiver, mailoutbox, eager_celery, django_capture_on_commit_callbacks
):
    """The alert was saved but its dispatch task never ran (the broker refused it, the process
    died after the commit): beat's sweep sends it a minute later, and only once."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.monitoring.tasks import redispatch_alerts

    operator = MembershipFactory(agency=world.agency, role="viewer", user=UserFactory(is_staff=True))
    add_webhook(receiver)
    with django_capture_on_commit_callbacks(execute=False):  # the dispatch is lost
        alert = fire_service_alert(now=timezone.now() - timedelta(seconds=90))
    assert Notification.objects.count() == 0 and mailoutbox == []

    with django_capture_on_commit_callbacks(execute=True):
        redispatch_alerts.run()
    assert [n.user_id for n in Notification.objects.all()] == [operator.user_id]
    assert sorted(a for m in mailoutbox for a in m.to) == sorted([operator.user.email, "oncall@example.com"])
    assert [r["body"]["alert_id"] for r in receiver.received] == [alert.pk]

    with django_capture_on_commit_callbacks(execute=True):
        redispatch_alerts.run()  # told already: nothing more
        from apps.monitoring.tasks import dispatch_alert

        dispatch_alert.delay(alert.pk, "alert.fired")  # a second queued copy of the same event
    assert Notification.objects.count() == 1 and len(mailoutbox) == 2 and len(receiver.received) == 1


def test_a_fresh_or_day_old_undispatched_firing_is_left_to_its_own_task(
    world, mailoutbox, eager_celery, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from apps.monitoring.tasks import redispatch_alerts

    UserFactory(is_staff=True)
    with django_capture_on_commit_callbacks(execute=False):
        fire_service_alert()  # its own task may still be on its way
        alerts.fire("slo:2:page-1h", kind="slo_burn", severity="page", title="Old",
                    now=timezone.now() - timedelta(days=2))  # fmt: skip
    assert redispatch_alerts.run() == 0
    assert mailoutbox == []


def test_beat_runs_the_redispatch_sweep_every_minute(settings):
    from apps.monitoring.tasks import redispatch_alerts

    entry = settings.CELERY_BEAT_SCHEDULE["redispatch-alerts"]
    assert entry["task"] == redispatch_alerts.name and entry["schedule"] == 60


def test_a_receiver_dripping_its_answer_times_out_at_the_attempts_deadline_and_is_retried(
    db, webhook_settings, receiver, eager_celery, django_capture_on_commit_callbacks
):
    """Each byte arrives well within the 0.3 s timeout, the whole answer would take 3 s: the
    attempt ends at 0.3 s, logged and retried, instead of holding the worker."""
    webhook = add_webhook(receiver)
    receiver.script = ["drip", 200]
    with django_capture_on_commit_callbacks(execute=True):
        fire_service_alert()
    first, second = WebhookAttempt.objects.filter(webhook=webhook).order_by("attempt")
    assert first.error.startswith("Timed out") and first.next_retry_at is not None
    assert first.duration_ms < 1000
    assert second.delivered


def test_an_answer_whose_body_cannot_be_decoded_still_counts_by_its_status(
    db, webhook_settings, receiver, eager_celery, django_capture_on_commit_callbacks
):
    webhook = add_webhook(receiver)
    receiver.script = ["bad-gzip"]
    with django_capture_on_commit_callbacks(execute=True):
        fire_service_alert()
    [attempt] = WebhookAttempt.objects.filter(webhook=webhook)
    assert attempt.delivered and attempt.status_code == 200


# -- the resolution told as reliably as the firing ------------------------------------------------
@pytest.fixture
def smtp(settings):
    """Django's SMTP backend pointed at a mail server on loopback (tests/fakes/smtp_server.py)."""
    from tests.fakes.smtp_server import FakeSMTPServer

    server = FakeSMTPServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 5
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield server
    server.stop()


def resolution_emails(mailoutbox) -> list[str]:
    return sorted(a for m in mailoutbox if m.subject.startswith("[Huntaze] Resolved:") for a in m.to)


def test_a_resolution_whose_dispatch_was_lost_is_sent_by_the_redispatch_sweep_once(
    world, webhook_settings, receiver, mailoutbox, eager_celery, django_capture_on_commit_callbacks
):
    """The alert was resolved but the task telling it never ran (the broker refused it): beat's
    sweep tells the resolution a minute later, as it does a firing, and only once."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.monitoring.tasks import redispatch_alerts

    operator = MembershipFactory(agency=world.agency, role="viewer", user=UserFactory(is_staff=True))
    add_webhook(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        fire_service_alert(now=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=False):  # the resolution's dispatch is lost
        alerts.resolve("slo:1:page-1h", now=timezone.now() - timedelta(seconds=90))
    assert resolution_emails(mailoutbox) == []
    assert not Notification.objects.filter(title__startswith="Resolved:").exists()

    with django_capture_on_commit_callbacks(execute=True):
        assert redispatch_alerts.run() == 1
    assert resolution_emails(mailoutbox) == sorted([operator.user.email, "oncall@example.com"])
    assert [n.user_id for n in Notification.objects.filter(title__startswith="Resolved:")] == [operator.user_id]
    assert [r["body"]["event"] for r in receiver.received] == ["alert.fired", "alert.resolved"]

    with django_capture_on_commit_callbacks(execute=True):
        assert redispatch_alerts.run() == 0  # told: the sweep leaves it alone
    assert len(mailoutbox) == 4 and Notification.objects.count() == 2 and len(receiver.received) == 2


def test_a_resolution_whose_email_failed_is_retried_and_then_sent_to_those_left(
    world, webhook_settings, receiver, smtp, eager_celery, django_capture_on_commit_callbacks
):
    """The mail server asks to try oncall@ again later (451) after taking the operator's email:
    the task retries and oncall@ gets the resolution; the operator, in the app, by email, and the
    webhook are not told a second time."""
    operator = MembershipFactory(agency=world.agency, role="viewer", user=UserFactory(is_staff=True))
    add_webhook(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        alert = fire_service_alert()
    smtp.rcpt_answers["oncall@example.com"] = ["451 4.3.0 Mailbox busy, try again later"]
    eager_celery.conf.task_eager_propagates = False  # as on a worker: a task that asks for a retry runs again
    with django_capture_on_commit_callbacks(execute=True):
        alerts.resolve("slo:1:page-1h")

    assert sorted(smtp.to("[Huntaze] Resolved:")) == sorted([operator.user.email, "oncall@example.com"])
    assert smtp.rcpt_attempts.count("oncall@example.com") == 3  # the firing, the refused try, the retry
    assert smtp.rcpt_attempts.count(operator.user.email) == 2  # the firing and the resolution, once each
    assert Notification.objects.filter(title__startswith="Resolved:").count() == 1
    assert [r["body"]["event"] for r in receiver.received] == ["alert.fired", "alert.resolved"]
    alert.refresh_from_db()
    assert alert.resolution_dispatched_at is not None
    assert "oncall@example.com" not in json.dumps(alert.told)  # addresses are noted as digests


def test_nobody_gets_two_resolution_emails_for_one_resolution(
    world, webhook_settings, receiver, mailoutbox, eager_celery, django_capture_on_commit_callbacks
):
    """A second copy of the resolution's task (a redelivered message, the sweep's copy next to a
    retry) finds everyone told and tells nobody again."""
    from apps.monitoring.tasks import dispatch_alert, redispatch_alerts

    operator = MembershipFactory(agency=world.agency, role="viewer", user=UserFactory(is_staff=True))
    add_webhook(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        alert = fire_service_alert()
        alerts.resolve("slo:1:page-1h")
    assert resolution_emails(mailoutbox) == sorted([operator.user.email, "oncall@example.com"])

    with django_capture_on_commit_callbacks(execute=True):
        dispatch_alert.delay(alert.pk, "alert.resolved")
        redispatch_alerts.run()
    assert resolution_emails(mailoutbox) == sorted([operator.user.email, "oncall@example.com"])
    assert Notification.objects.filter(title__startswith="Resolved:").count() == 1
    assert [r["body"]["event"] for r in receiver.received] == ["alert.fired", "alert.resolved"]


def test_an_address_the_mail_server_refuses_for_good_does_not_stop_the_others_nor_come_back(
    world, webhook_settings, smtp, eager_celery, django_capture_on_commit_callbacks
):
    """A 550 for one staff address: the others still get the page, and the refused address is
    not tried again (no retry would reach it), so the firing counts as told."""
    from datetime import timedelta

    from django.utils import timezone

    gone = UserFactory(is_staff=True)
    staff = UserFactory(is_staff=True)
    smtp.rcpt_answers[gone.email] = ["550 5.1.1 No such user"] * 3
    with django_capture_on_commit_callbacks(execute=True):
        alert = fire_service_alert()

    assert sorted(smtp.to("[Huntaze] Page:")) == sorted([staff.email, "oncall@example.com"])
    assert smtp.rcpt_attempts.count(gone.email) == 1
    alert.refresh_from_db()
    assert alert.dispatched_at is not None
    assert alerts.redispatch(now=timezone.now() + timedelta(minutes=2)) == 0


@pytest.mark.django_db(transaction=True)
def test_two_workers_telling_one_resolution_at_once_send_each_email_once(world, webhook_settings, smtp):
    """The sweep queued the resolution again while its first task was still sending (a slow mail
    server): one of the two tells everyone, the other leaves it, and nobody is told twice."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection as db
    from django.utils import timezone

    operator = MembershipFactory(agency=world.agency, role="viewer", user=UserFactory(is_staff=True))
    now = timezone.now()
    alert = Alert.objects.create(
        key="slo:1:page-1h", kind="slo_burn", severity="page", title="API availability: burning 15x",
        state=Alert.State.RESOLVED, fired_at=now, resolved_at=now, dispatched_at=now,
    )  # fmt: skip
    smtp.data_delay = 0.5

    def dispatch_in_thread(_: int) -> None:
        try:
            alerts.dispatch(Alert.objects.get(pk=alert.pk), "alert.resolved")
        finally:
            db.close()

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(dispatch_in_thread, range(2)))
    assert sorted(smtp.to("[Huntaze] Resolved:")) == sorted([operator.user.email, "oncall@example.com"])
    assert [n.user_id for n in Notification.objects.filter(title__startswith="Resolved:")] == [operator.user_id]
