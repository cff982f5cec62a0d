"""Inbound webhooks of the third-party OnlyFans/Fansly API: signed, stored once, applied once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import TestCase
from django.utils import timezone

from apps.integrations import services
from apps.integrations.models import Connection, WebhookEvent
from apps.integrations.sync import sync_run
from apps.messaging.models import Conversation, Fan, Message, Purchase
from tests.fakes.platforms import FakeCreatorApi

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]


@pytest.fixture
def api_connection(world, settings):
    # Eager smoke tests: one drain per webhook, run when the request commits. The coalescing window
    # (several webhooks, one drain) is tested with a real worker below.
    settings.INTEGRATIONS_WEBHOOK_COALESCE_SECONDS = 0
    connection, secret = services.api_connection_configure(
        membership=world.owner, creator=world.creator, platform="onlyfans",
        api_base_url="https://api.example-of-api.com/v1", api_key="key-123", api_account_id="acct-9",
    )  # fmt: skip
    return connection, secret


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict:
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"HTTP_X_WEBHOOK_TIMESTAMP": timestamp, "HTTP_X_WEBHOOK_SIGNATURE": f"sha256={digest}"}


def post(client, connection: Connection, payload, secret: str | None, **overrides):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = sign(secret, body) if secret else {}
    headers.update(overrides)
    with TestCase.captureOnCommitCallbacks(execute=True):  # the processing task queued on commit runs
        return client.post(
            f"/integrations/webhooks/{connection.platform}/{connection.public_id}/", body,
            content_type="application/json", **headers,
        )  # fmt: skip


def applied(response) -> str:
    """The stored event's status once its task ran: the endpoint answers as soon as it has stored
    the event (``pending``, or the status of the row a replay found)."""
    assert response.status_code == 200
    return WebhookEvent.objects.get(event_id=response.json()["id"]).status


MESSAGE = {
    "id": "evt_1",
    "type": "messages.received",
    "data": {
        "fan": {"id": "fan-42", "username": "lucky42", "name": "Lucky <b>Fan</b>"},
        "message": {"id": "msg-1", "text": "hey <script>alert(1)</script> you", "created_at": "2026-12-01T10:00:00Z"},
    },
}


def test_message_received_lands_in_the_inbox_once(client, api_connection, world, client_for):
    connection, secret = api_connection
    response = post(client, connection, MESSAGE, secret)
    assert response.status_code == 200 and response.json() == {"id": "evt_1", "status": "pending", "duplicate": False}
    assert applied(response) == "processed"
    fan = Fan.objects.get(creator=world.creator, platform="onlyfans", platform_fan_id="fan-42")
    message = Message.objects.get(fan=fan)
    assert message.text == "hey <script>alert(1)</script> you" and message.direction == "in"
    assert Conversation.objects.get(fan=fan).needs_reply
    # The sender retries the same event (a new signature, the same id): 200, nothing new.
    again = post(client, connection, MESSAGE, secret)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert Message.objects.filter(fan=fan).count() == 1 and WebhookEvent.objects.count() == 1
    assert Connection.objects.get(pk=connection.pk).last_sync_at is not None
    # The fan's text shows escaped in the inbox and on the connection's webhook history.
    page = client_for(world.owner).get(f"/integrations/connections/{connection.pk}/").content.decode()
    assert "messages.received" in page and "<script>" not in page


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no signature at all
        {"HTTP_X_WEBHOOK_TIMESTAMP": str(int(time.time())), "HTTP_X_WEBHOOK_SIGNATURE": "sha256=" + "0" * 64},
        {"HTTP_X_WEBHOOK_TIMESTAMP": "yesterday", "HTTP_X_WEBHOOK_SIGNATURE": "0" * 64},
        {"HTTP_X_WEBHOOK_TIMESTAMP": "9" * 400, "HTTP_X_WEBHOOK_SIGNATURE": "0" * 64},  # overflows a float
        {"HTTP_X_WEBHOOK_TIMESTAMP": str(int(time.time())), "HTTP_X_WEBHOOK_SIGNATURE": "sha256=é" * 8},
    ],
)
def test_bad_or_missing_signature_is_401_and_stores_nothing(client, api_connection, headers, caplog):
    connection, secret = api_connection
    response = post(client, connection, MESSAGE, None, **headers)
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists() and not Message.objects.exists()
    assert any("integrations.webhook.rejected" in r.getMessage() for r in caplog.records)
    assert secret not in caplog.text


def test_signature_of_another_secret_or_body_is_refused(client, api_connection):
    connection, secret = api_connection
    body = json.dumps(MESSAGE).encode()
    tampered = body.replace(b"hey", b"pay")
    response = client.post(
        f"/integrations/webhooks/onlyfans/{connection.public_id}/", tampered, content_type="application/json",
        **sign(secret, body),
    )  # fmt: skip
    assert response.status_code == 401
    assert post(client, connection, MESSAGE, "whsec_someone-else").status_code == 401
    assert not WebhookEvent.objects.exists()


def test_timestamp_outside_the_replay_window_is_refused(client, api_connection, settings):
    connection, secret = api_connection
    body = json.dumps(MESSAGE).encode()
    old = sign(secret, body, timestamp=int(time.time()) - settings.INTEGRATIONS_WEBHOOK_TOLERANCE_SECONDS - 5)
    response = client.post(
        f"/integrations/webhooks/onlyfans/{connection.public_id}/", body, content_type="application/json", **old
    )
    assert response.status_code == 401 and "replay window" in response.json()["message"]
    assert not WebhookEvent.objects.exists()


def test_subscriptions_create_then_renew_the_fan(client, api_connection, world):
    connection, secret = api_connection
    new = {
        "id": "evt_sub_1", "type": "subscriptions.new",
        "data": {"fan": {"id": "fan-7", "username": "seven"}, "subscription": {
            "id": "sub-1", "price": "9.99", "started_at": "2026-11-01T00:00:00Z",
            "expires_at": "2026-12-01T00:00:00Z"}},
    }  # fmt: skip
    assert applied(post(client, connection, new, secret)) == "processed"
    fan = Fan.objects.get(platform_fan_id="fan-7")
    assert fan.subscription_state == "active" and fan.subscribed_since.isoformat().startswith("2026-11-01")
    assert fan.total_spent == Purchase.objects.get(fan=fan).amount
    renewed = {
        "id": "evt_sub_2", "type": "subscriptions.renewed",
        "data": {"fan": {"id": "fan-7"},
                 "subscription": {"id": "sub-2", "price": "9.99", "expires_at": "2027-01-01T00:00:00Z"}},
    }  # fmt: skip
    assert applied(post(client, connection, renewed, secret)) == "processed"
    assert post(client, connection, renewed, secret).json()["duplicate"] is True
    fan.refresh_from_db()
    assert fan.subscription_expires_at.isoformat().startswith("2027-01-01") and fan.username == "seven"
    assert Purchase.objects.filter(fan=fan).count() == 2 and str(fan.total_spent) == "19.98"


def test_a_moment_the_database_cannot_hold_is_read_as_none(client, api_connection):
    # Year 1 at +05:45 is before year 1 in UTC: an OverflowError on SQLite, on PostgreSQL a BC
    # timestamp psycopg cannot read back (every later read of the fan would fail).
    connection, secret = api_connection
    event = {
        "id": "evt_sub_far", "type": "subscriptions.new",
        "data": {"fan": {"id": "fan-far", "username": "far"}, "subscription": {
            "id": "sub-far", "price": "9.99", "started_at": "2026-11-01T00:00:00Z",
            "expires_at": "0001-01-01T00:00:00+05:45"}},
    }  # fmt: skip
    assert applied(post(client, connection, event, secret)) == "processed"
    fan = Fan.objects.get(platform_fan_id="fan-far")
    assert fan.subscription_expires_at is None and fan.subscribed_since.year == 2026


def test_ppv_unlock_records_the_purchase_once(client, api_connection):
    connection, secret = api_connection
    event = {"id": "evt_ppv", "type": "messages.ppv.unlocked",
             "data": {"fan": {"id": "fan-1"}, "message": {"id": "msg-9"}, "price": "15.00"}}  # fmt: skip
    assert applied(post(client, connection, event, secret)) == "processed"
    assert post(client, connection, event, secret).status_code == 200
    purchase = Purchase.objects.get()
    assert purchase.kind == "ppv" and str(purchase.amount) == "15.00"
    assert "PPV purchase" in WebhookEvent.objects.get().note


def test_unknown_type_is_stored_and_ignored(client, api_connection):
    connection, secret = api_connection
    response = post(client, connection, {"id": "evt_x", "type": "posts.liked", "data": {}}, secret)
    assert applied(response) == "ignored"
    assert WebhookEvent.objects.get().status == "ignored"


def test_event_with_bad_data_is_stored_as_failed(client, api_connection):
    connection, secret = api_connection
    response = post(client, connection, {"id": "evt_bad", "type": "messages.received", "data": {"fan": {}}}, secret)
    assert applied(response) == "failed"
    assert "fan" in WebhookEvent.objects.get().error and not Message.objects.exists()


@pytest.mark.parametrize(
    "event",
    [
        {"type": "messages.received", "data": {"fan": {"id": "f1"}, "message": "hi"}},
        {"type": "messages.received", "data": {"fan": {"id": "f1"}, "message": {"id": "m1", "created_at": 1e300}}},
        {"type": "subscriptions.new", "data": {"fan": {"id": "f1"}, "subscription": "monthly"}},
        {"type": "subscriptions.new", "data": [1]},
        {"type": "messages.received", "data": {"fan": {"id": "f1"}, "message": {"id": "m1", "media_count": 2**40}}},
        {"type": "messages.ppv.unlocked", "data": {"fan": {"id": "f1"}, "message": {"id": "m1"}, "price": "1e30"}},
        {"type": "messages.ppv.unlocked", "data": {"fan": {"id": "f1"}, "message": {"id": "m1"}, "price": "NaN"}},
    ],
)
def test_signed_event_of_the_wrong_shape_is_stored_as_failed_not_a_500(client, api_connection, event):
    connection, secret = api_connection
    response = post(client, connection, {"id": "evt_shape", **event}, secret)
    assert applied(response) == "failed"
    assert WebhookEvent.objects.get().error and not Message.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"type": "messages.received"}).encode(),
        # Python's json reads these; they are not JSON and PostgreSQL's jsonb refuses them (a 500).
        b'{"id": "e1", "type": "subscriptions.new", "data": {"price": NaN}}',
        b'{"id": "e1", "type": "subscriptions.new", "data": {"price": -Infinity}}',
        b'{"id": "e1", "type": "subscriptions.new", "data": {"price": 1e999}}',
    ],
)
def test_signed_but_malformed_body_is_400(client, api_connection, body):
    connection, secret = api_connection
    assert post(client, connection, body, secret).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_unknown_disconnected_or_wrong_platform_connection_is_404(client, api_connection, world):
    connection, secret = api_connection
    assert client.post(f"/integrations/webhooks/fansly/{connection.public_id}/", b"{}",
                       content_type="application/json").status_code == 404  # fmt: skip
    assert client.get(f"/integrations/webhooks/onlyfans/{connection.public_id}/").status_code == 405
    services.connection_disconnect(membership=world.owner, connection=connection)
    assert post(client, connection, MESSAGE, secret).status_code == 404
    assert not WebhookEvent.objects.exists()


def test_a_form_post_is_refused_without_touching_anything(client, api_connection):
    connection, _ = api_connection
    response = client.post(f"/integrations/webhooks/onlyfans/{connection.public_id}/", {"id": "evt", "type": "x"})
    assert response.status_code == 415
    assert not WebhookEvent.objects.exists()


def test_the_endpoint_answers_once_stored_and_a_lost_task_is_requeued_by_the_sweep(client, api_connection):
    from apps.integrations.tasks import webhooks_sweep
    from apps.integrations.webhooks import PENDING_GRACE_SECONDS

    connection, secret = api_connection
    body = json.dumps(MESSAGE).encode()
    response = client.post(  # no on-commit run: as if the queued task were lost
        f"/integrations/webhooks/onlyfans/{connection.public_id}/", body, content_type="application/json",
        **sign(secret, body),
    )  # fmt: skip
    assert response.json()["status"] == "pending" and not Message.objects.exists()
    assert webhooks_sweep() == 0  # inside the grace period its task may still come
    WebhookEvent.objects.update(received_at=timezone.now() - timedelta(seconds=PENDING_GRACE_SECONDS + 1))
    assert webhooks_sweep() == 1
    assert WebhookEvent.objects.get().status == "processed" and Message.objects.count() == 1
    assert webhooks_sweep() == 0


def subscription_event(event_id: str, kind: str, **subscription) -> dict:
    data = {"fan": {"id": "fan-7"}, "subscription": {"id": "sub-1", "price": "9.99", **subscription}}
    return {"id": event_id, "type": f"subscriptions.{kind}", "data": data}


def test_each_renewal_of_the_same_subscription_is_a_purchase_of_its_own(client, api_connection):
    connection, secret = api_connection
    assert applied(post(client, connection, subscription_event("evt_new", "new"), secret)) == "processed"
    for month in ("evt_renew_jan", "evt_renew_feb"):
        event = subscription_event(month, "renewed", renewed_at="2027-01-01T00:00:00Z")
        assert applied(post(client, connection, event, secret)) == "processed"
    # The provider retries February's renewal: nothing more.
    replay = post(client, connection, subscription_event("evt_renew_feb", "renewed"), secret)
    assert replay.json() == {"id": "evt_renew_feb", "status": "processed", "duplicate": True}
    fan = Fan.objects.get(platform_fan_id="fan-7")
    assert Purchase.objects.filter(fan=fan, kind="subscription").count() == 3
    assert fan.total_spent == fan.spent_subscriptions == Decimal("29.97")


def test_a_payment_named_by_its_transaction_is_recorded_once_by_webhook_and_sync(client, api_connection, settings):
    """The webhook of a renewal names the provider's transaction; the next sync reads the same
    transaction from the provider's feed: one purchase, not two."""
    connection, secret = api_connection
    settings.INTEGRATIONS_API_ALLOW_LOOPBACK = settings.INTEGRATIONS_API_LOOPBACK_ONLY = True
    provider = FakeCreatorApi().start()
    try:
        account = provider.account("acct-9", "key-123")
        account.put_fan("fan-7")
        first = account.add_transaction("fan-7", "subscription", "9.99", subscription_id="sub-1")
        renewal = account.add_transaction("fan-7", "subscription", "9.99", subscription_id="sub-1")
        Connection.objects.filter(pk=connection.pk).update(api_base_url=provider.base_url)
        event = subscription_event("evt_renew", "renewed", transaction_id=renewal["id"])
        assert applied(post(client, connection, event, secret)) == "processed"
        assert sync_run(connection_id=connection.pk).run.status == "succeeded"
    finally:
        provider.stop()
    keys = sorted(Purchase.objects.values_list("platform_purchase_id", flat=True))
    assert keys == sorted([f"subscription:{first['id']}", f"subscription:{renewal['id']}"])
    assert Fan.objects.get(platform_fan_id="fan-7").total_spent == Decimal("19.98")


@pytest.mark.parametrize("body", [b'{"id": "evt_nul", "type": "x", "data": {"text": "a\\u0000b"}}', b"\x00"])
def test_a_signed_body_with_nul_is_400_and_stores_nothing(client, api_connection, body):
    connection, secret = api_connection
    response = post(client, connection, body, secret)
    assert response.status_code == 400 and "NUL" in response.json()["message"]
    assert not WebhookEvent.objects.exists()


def test_a_new_secret_counts_at_once_and_the_old_one_is_refused(client, api_connection, world):
    connection, old_secret = api_connection
    assert post(client, connection, MESSAGE, old_secret).status_code == 200
    _, new_secret = services.api_connection_configure(
        membership=world.owner, creator=world.creator, platform="onlyfans",
        api_base_url="https://api.example-of-api.com/v1", api_key="key-123", api_account_id="acct-9",
    )  # fmt: skip
    assert post(client, connection, {**MESSAGE, "id": "evt_2"}, old_secret).status_code == 401
    assert post(client, connection, {**MESSAGE, "id": "evt_2"}, new_secret).status_code == 200


def test_storing_a_webhook_costs_two_statements_and_skips_the_member_stack(
    client, client_for, api_connection, world, django_assert_num_queries
):
    connection, secret = api_connection
    body = json.dumps(MESSAGE).encode()
    member = client_for(world.owner)  # a signed-in browser's cookies change nothing on this path
    with django_assert_num_queries(2):  # find the connection, insert the event
        response = member.post(
            f"/integrations/webhooks/onlyfans/{connection.public_id}/", body, content_type="application/json",
            **sign(secret, body),
        )  # fmt: skip
    assert response.json()["status"] == "pending" and "Set-Cookie" not in response.headers
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in response.headers and response.headers["X-Request-ID"]
    event = WebhookEvent.objects.get()
    assert (event.agency_id, event.connection_id, event.type) == (world.agency.pk, connection.pk, "messages.received")
    assert event.payload == MESSAGE and event.status == "pending" and event.received_at <= timezone.now()


def test_a_bad_host_is_refused_on_the_short_path_too(client, api_connection):
    connection, secret = api_connection
    body = json.dumps(MESSAGE).encode()
    response = client.post(
        f"/integrations/webhooks/onlyfans/{connection.public_id}/", body, content_type="application/json",
        HTTP_HOST="evil.example", **sign(secret, body),
    )  # fmt: skip
    assert response.status_code == 400 and not WebhookEvent.objects.exists()


def test_webhooks_within_a_window_share_one_drain(client, api_connection, settings, django_capture_on_commit_callbacks):
    """The window, seen from the web side (the worker side: test_webhooks_delivery.py). Eager
    tasks run the later drain at once, so the events after the first wait, pending, for it."""
    connection, secret = api_connection
    settings.INTEGRATIONS_WEBHOOK_COALESCE_SECONDS = 30
    queued = []
    for n in range(3):
        data = {**MESSAGE["data"], "message": {"id": f"m{n}"}}
        body = json.dumps({**MESSAGE, "id": f"evt_w{n}", "data": data}).encode()
        with django_capture_on_commit_callbacks() as callbacks:
            response = client.post(
                f"/integrations/webhooks/onlyfans/{connection.public_id}/", body, content_type="application/json",
                **sign(secret, body),
            )  # fmt: skip
        assert response.status_code == 200
        queued.append(len(callbacks))
    assert queued == [2, 0, 0]  # a drain now and one after the window; then nothing
    assert WebhookEvent.objects.filter(status="pending").count() == 3
    from apps.integrations.tasks import process_webhooks

    assert process_webhooks(connection.pk, time.time() - 60) == 3  # what the later drain does
    assert Message.objects.count() == 3 and not WebhookEvent.objects.filter(status="pending").exists()


def test_an_event_with_values_no_column_holds_fails_alone_and_the_next_ones_are_applied(
    client, api_connection, settings, django_capture_on_commit_callbacks
):
    """One drain applies a connection's pending events in order: an impossible amount fails that
    event with its reason, and the messages after it still reach the inbox."""
    connection, secret = api_connection
    settings.INTEGRATIONS_WEBHOOK_COALESCE_SECONDS = 30
    events = [
        {"id": "evt_huge", "type": "messages.ppv.unlocked",
         "data": {"fan": {"id": "f1"}, "message": {"id": "m0"}, "price": "99999999999"}},
        *({**MESSAGE, "id": f"evt_after{n}", "data": {**MESSAGE["data"], "message": {"id": f"m{n}"}}} for n in (1, 2)),
    ]  # fmt: skip
    for event in events:
        body = json.dumps(event).encode()
        with django_capture_on_commit_callbacks():  # queued, not run: the drain below runs them
            response = client.post(
                f"/integrations/webhooks/onlyfans/{connection.public_id}/", body, content_type="application/json",
                **sign(secret, body),
            )  # fmt: skip
        assert response.status_code == 200
    from apps.integrations.tasks import process_webhooks

    assert process_webhooks(connection.pk, time.time() - 60) == 3
    statuses = dict(WebhookEvent.objects.values_list("event_id", "status"))
    assert statuses == {"evt_huge": "failed", "evt_after1": "processed", "evt_after2": "processed"}
    assert "not an amount a payment can have" in WebhookEvent.objects.get(event_id="evt_huge").error
    assert Message.objects.count() == 2 and not Purchase.objects.exists()
