"""CRM webhooks: connections and their pages, signed outbound events with retries and replay,
and the signed inbound endpoint. The CRM is tests/fakes/crm_server.py, a loopback receiver that
checks our signature with its own HMAC code."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import OutboxEvent
from apps.integrations import crm as crm_services
from apps.integrations import tasks
from apps.integrations.models import CRMConnection, CRMDelivery, CRMInboundEvent
from apps.messaging import services as messaging
from apps.messaging.models import FanNote
from apps.notifications.models import Notification
from tests.fakes.crm_server import sign
from tests.integrations.helpers import raw_column
from tests.messaging.factories import FanFactory

pytestmark = pytest.mark.django_db

ALL_KINDS = ["fan.created", "purchase.recorded", "campaign.completed", "alert.fired"]


@pytest.fixture
def fake_crm(crm_server, settings):
    crm_server.reset()
    settings.INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP = True
    settings.INTEGRATIONS_CRM_RETRY_BASE_SECONDS = 1.0
    settings.INTEGRATIONS_CRM_RETRY_MAX_SECONDS = 5.0
    settings.SITE_URL = "http://testserver"
    yield crm_server


def _crm(world, fake_crm, kinds=ALL_KINDS, mapping=None) -> CRMConnection:
    crm, secret = crm_services.crm_create(
        membership=world.owner, name="HubCRM", target_url=fake_crm.url, event_kinds=kinds,
        field_mapping=mapping if mapping is not None else {"id": "external_id", "username": "handle", "tags": "labels"},
    )  # fmt: skip
    fake_crm.reset(secret=secret)
    crm.secret = secret
    return crm


def _form(fake_crm, **overrides):
    data = {
        "name": "HubCRM",
        "target_url": fake_crm.url,
        "event_kinds": ["fan.created", "purchase.recorded"],
        "field_mapping": "username = handle\ndisplay_name = full_name",
        "active": "on",
    }
    data.update(overrides)
    return data


# --- Connection pages ------------------------------------------------------------------------------


def test_create_shows_the_secret_once_and_stores_it_encrypted(world, client_for, fake_crm):
    client = client_for(world.manager)
    response = client.post("/integrations/crm/new/", _form(fake_crm))
    assert response.status_code == 200, response.content[:800]
    crm = CRMConnection.objects.get()
    page = response.content.decode()
    assert crm.signing_secret.startswith("whsec_") and crm.signing_secret in page
    assert crm.field_mapping == {"username": "handle", "display_name": "full_name"}
    assert crm.event_kinds == ["fan.created", "purchase.recorded"]
    assert crm.signing_secret not in raw_column("integrations_crmconnection", "signing_secret", crm.pk)
    detail = client.get(f"/integrations/crm/{crm.pk}/").content.decode()
    assert crm.signing_secret not in detail and "HubCRM" in detail
    assert "HubCRM" in client.get("/integrations/crm/").content.decode()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"target_url": "http://crm.example.com/hook"}, "https://"),
        ({"target_url": "ftp://crm.example.com/hook"}, "Enter an https:// address"),
        ({"target_url": "https://10.1.2.3/hook"}, "private"),
        ({"field_mapping": "favourite_colour = colour"}, "Unknown fan field"),
        ({"field_mapping": "username handle"}, "our_field = crm_field"),
        ({"field_mapping": "username = <b>"}, "letters, digits"),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_saved(world, client_for, fake_crm, settings, overrides, message):
    settings.INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP = False  # production: https only, no private addresses
    data = _form(fake_crm, **overrides)
    if "target_url" not in overrides:
        data["target_url"] = "https://93.184.215.14/hook"  # a public address, no DNS needed
    response = client_for(world.owner).post("/integrations/crm/new/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not CRMConnection.objects.exists()


def test_loopback_http_is_refused_when_not_allowed(world, fake_crm, settings):
    settings.INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP = False
    with pytest.raises(crm_services.ApplicationError, match="https://"):
        crm_services.crm_create(
            membership=world.owner, name="x", target_url=fake_crm.url, event_kinds=[], field_mapping={}
        )


def test_edit_rotate_and_delete(world, client_for, fake_crm):
    crm = _crm(world, fake_crm)
    client = client_for(world.owner)
    response = client.post(
        f"/integrations/crm/{crm.pk}/", _form(fake_crm, name="Renamed", event_kinds=["alert.fired"], active="")
    )
    assert response.status_code == 302
    crm.refresh_from_db()
    assert (crm.name, crm.event_kinds, crm.active) == ("Renamed", ["alert.fired"], False)
    rotated = client.post(f"/integrations/crm/{crm.pk}/rotate/")
    new_secret = CRMConnection.objects.get(pk=crm.pk).signing_secret
    assert new_secret != crm.secret and new_secret in rotated.content.decode()
    assert client.post(f"/integrations/crm/{crm.pk}/delete/").status_code == 302
    assert not CRMConnection.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "chatter"])
def test_viewers_and_chatters_see_but_cannot_change(world, client_for, fake_crm, role):
    crm = _crm(world, fake_crm)
    client = client_for(world.member(role))
    page = client.get(f"/integrations/crm/{crm.pk}/")
    assert page.status_code == 200 and "Rotate" not in page.content.decode()
    assert client.post("/integrations/crm/new/", _form(fake_crm, name="Mine")).status_code == 403
    assert client.post(f"/integrations/crm/{crm.pk}/rotate/").status_code == 403
    assert client.post(f"/integrations/crm/{crm.pk}/delete/").status_code == 403
    assert client.post(f"/integrations/crm/{crm.pk}/", _form(fake_crm, name="Hijacked")).status_code == 403
    assert CRMConnection.objects.get().signing_secret == crm.secret
    assert CRMConnection.objects.get().name == "HubCRM"


def test_another_agency_gets_404(world, other_world, client_for, fake_crm):
    crm = _crm(world, fake_crm)
    delivery = CRMDelivery.objects.create(agency=world.agency, crm=crm, event_id=1, kind="fan.created", payload={})
    outsider = client_for(other_world.owner)
    assert outsider.get(f"/integrations/crm/{crm.pk}/").status_code == 404
    assert outsider.post(f"/integrations/crm/{crm.pk}/rotate/").status_code == 404
    assert outsider.post(f"/integrations/crm/{crm.pk}/delete/").status_code == 404
    assert outsider.post(f"/integrations/crm/deliveries/{delivery.pk}/replay/").status_code == 404
    assert "HubCRM" not in outsider.get("/integrations/crm/").content.decode()
    assert CRMConnection.objects.filter(pk=crm.pk).exists()


# --- Outbound ----------------------------------------------------------------------------------------


def test_new_fan_reaches_the_crm_signed_with_mapped_fields(
    world, fake_crm, eager_celery, django_capture_on_commit_callbacks
):
    crm = _crm(world, fake_crm)
    with django_capture_on_commit_callbacks(execute=True):
        fan, created = messaging.fan_upsert(
            creator=world.creator, platform="onlyfans", platform_fan_id="of-42", username="lucky42"
        )
    assert created
    [event] = fake_crm.state.received
    assert event["type"] == "fan.created" and event["id"].startswith("evt_")
    assert event["data"]["fan"] == {"external_id": fan.pk, "handle": "lucky42", "labels": []}
    request = fake_crm.state.requests[-1]
    assert request["headers"]["huntaze-event-id"] == event["id"] and request["status"] == 200
    delivery = CRMDelivery.objects.get(crm=crm)
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 1, 200)
    # Updating the fan is not a new fan; a re-dispatched event writes no second delivery.
    with django_capture_on_commit_callbacks(execute=True):
        messaging.fan_upsert(creator=world.creator, platform="onlyfans", platform_fan_id="of-42", username="l2")
    crm_services.on_domain_event(OutboxEvent.objects.get(kind="fan.created"))
    assert CRMDelivery.objects.count() == 1 and len(fake_crm.state.received) == 1


def test_purchase_alert_and_campaign_events_are_sent(world, fake_crm, eager_celery, django_capture_on_commit_callbacks):
    from apps.campaigns import services as campaign_services
    from apps.campaigns.models import Campaign
    from apps.monitoring import alerts
    from tests.campaigns.conftest import make_campaign

    _crm(world, fake_crm, kinds=["purchase.recorded", "alert.fired", "campaign.completed"])
    fan = FanFactory(creator=world.creator)
    campaign = make_campaign(world, fan_ids=[fan.pk])
    Campaign.objects.filter(pk=campaign.pk).update(status="sending")
    with django_capture_on_commit_callbacks(execute=True):
        messaging.purchase_record(fan=fan, kind="tip", amount="12.50", platform_purchase_id="tip-1")
        alerts.fire(
            "budget:test", kind="budget", severity="warning", title="AI budget at 80%", agency_id=world.agency.pk
        )
        assert campaign_services.campaigns_tick()["completed"] == 1
    by_type = {event["type"]: event["data"] for event in fake_crm.state.received}
    assert set(by_type) == {"purchase.recorded", "alert.fired", "campaign.completed"}
    assert (
        by_type["purchase.recorded"]["amount"] == "12.50"
        and by_type["purchase.recorded"]["fan"]["external_id"] == fan.pk
    )
    assert by_type["alert.fired"]["title"] == "AI budget at 80%"
    assert by_type["campaign.completed"]["campaign_id"] == campaign.pk


def test_another_agencys_events_and_unsubscribed_kinds_are_not_sent(
    world, other_world, fake_crm, eager_celery, django_capture_on_commit_callbacks
):
    _crm(world, fake_crm, kinds=["purchase.recorded"])
    with django_capture_on_commit_callbacks(execute=True):
        messaging.fan_upsert(creator=world.creator, platform="onlyfans", platform_fan_id="a", username="a")
        other_fan, _ = messaging.fan_upsert(
            creator=other_world.creator, platform="onlyfans", platform_fan_id="b", username="b"
        )
        messaging.purchase_record(fan=other_fan, kind="tip", amount="5")
    assert fake_crm.state.requests == [] and not CRMDelivery.objects.exists()


def _delivery(world, fake_crm, django_capture_on_commit_callbacks) -> CRMDelivery:
    """A fan.created delivery written by the subscriber, its task not run yet."""
    _crm(world, fake_crm, kinds=["fan.created"])
    with django_capture_on_commit_callbacks(execute=False):
        messaging.fan_upsert(creator=world.creator, platform="onlyfans", platform_fan_id="x", username="x")
        crm_services.on_domain_event(OutboxEvent.objects.get(kind="fan.created"))
    return CRMDelivery.objects.get()


def test_outage_is_retried_with_backoff_then_delivered(world, fake_crm, django_capture_on_commit_callbacks):
    delivery = _delivery(world, fake_crm, django_capture_on_commit_callbacks)
    fake_crm.fail_next(503, times=1)
    status, retry_in = crm_services.crm_delivery_attempt(delivery_id=delivery.pk)
    assert status == "retrying" and 0 <= retry_in <= 1.0
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.response_code, delivery.last_error) == (1, 503, "HTTP 503")
    assert delivery.next_attempt_at is not None
    CRMDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk) == ("skipped", None)  # not due yet
    CRMDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk)[0] == "delivered"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 2, 200)
    assert len(fake_crm.state.received) == 1
    # A late duplicate task changes nothing.
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk) == ("skipped", None)


def test_retry_delay_grows_exponentially_within_the_cap(settings):
    settings.INTEGRATIONS_CRM_RETRY_BASE_SECONDS = 10
    settings.INTEGRATIONS_CRM_RETRY_MAX_SECONDS = 100
    assert max(crm_services.retry_delay(1) for _ in range(200)) <= 10
    assert max(crm_services.retry_delay(3) for _ in range(200)) > 10
    assert max(crm_services.retry_delay(10) for _ in range(200)) <= 100


def test_a_crm_refusing_every_event_notifies_the_owners_once_not_once_per_event(
    world, fake_crm, django_capture_on_commit_callbacks
):
    # A revoked key answers 401 to everything: each delivery is dead at its first attempt. An
    # import of many fans must not send the owners one notification per fan.
    _crm(world, fake_crm, kinds=["fan.created"])
    with django_capture_on_commit_callbacks(execute=False):
        for n in range(6):
            messaging.fan_upsert(creator=world.creator, platform="onlyfans", platform_fan_id=f"f{n}", username=f"f{n}")
        for event in OutboxEvent.objects.filter(kind="fan.created"):
            crm_services.on_domain_event(event)
    fake_crm.fail_next(401, times=6)
    deliveries = list(CRMDelivery.objects.order_by("pk"))
    assert len(deliveries) == 6
    assert all(crm_services.crm_delivery_attempt(delivery_id=d.pk)[0] == "dead" for d in deliveries)
    notes = Notification.objects.filter(agency=world.agency)
    assert notes.count() == 1 and "delivery log" in notes.get().body
    assert CRMDelivery.objects.filter(status="dead").count() == 6  # every one still in the log


def test_dead_after_max_attempts_tells_the_owner_once_and_replay_sends_again(
    world, client_for, fake_crm, settings, eager_celery, django_capture_on_commit_callbacks
):
    settings.INTEGRATIONS_CRM_MAX_ATTEMPTS = 2
    delivery = _delivery(world, fake_crm, django_capture_on_commit_callbacks)
    fake_crm.fail_next(500, times=2)
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk)[0] == "retrying"
    CRMDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk) == ("dead", None)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("dead", 2, 500)
    notes = Notification.objects.filter(agency=world.agency)
    assert list(notes.values_list("user_id", flat=True)) == [world.owner.user_id]
    assert "HubCRM" in notes.get().title and notes.get().url == f"/integrations/crm/{delivery.crm_id}/"
    page = client_for(world.owner).get(f"/integrations/crm/{delivery.crm_id}/").content.decode()
    assert "Dead (gave up)" in page and "HTTP 500" in page and "Replay" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(world.manager).post(f"/integrations/crm/deliveries/{delivery.pk}/replay/")
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 1, 200)
    assert len(fake_crm.state.received) == 1 and notes.count() == 1
    assert client_for(world.viewer).post(f"/integrations/crm/deliveries/{delivery.pk}/replay/").status_code == 403


@pytest.mark.parametrize(("status", "error"), [(400, "HTTP 400"), (401, "HTTP 401")])
def test_a_refusal_is_final(world, fake_crm, django_capture_on_commit_callbacks, status, error):
    delivery = _delivery(world, fake_crm, django_capture_on_commit_callbacks)
    fake_crm.fail_next(status)
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk) == ("dead", None)
    delivery.refresh_from_db()
    assert delivery.last_error == error and delivery.attempts == 1


def test_wrong_secret_is_refused_by_the_crm(world, fake_crm, django_capture_on_commit_callbacks):
    delivery = _delivery(world, fake_crm, django_capture_on_commit_callbacks)
    fake_crm.state.secret = "whsec_not_ours"
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk)[0] == "dead"
    assert fake_crm.state.requests[-1]["status"] == 401 and fake_crm.state.received == []


def test_redirects_are_not_followed(world, fake_crm, django_capture_on_commit_callbacks):
    delivery = _delivery(world, fake_crm, django_capture_on_commit_callbacks)
    fake_crm.state.redirect_to = "http://169.254.169.254/latest/meta-data/"
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk)[0] == "dead"
    delivery.refresh_from_db()
    assert delivery.last_error == "HTTP 302" and len(fake_crm.state.requests) == 1


def test_a_target_made_private_later_is_refused_before_connecting(
    world, fake_crm, settings, django_capture_on_commit_callbacks
):
    delivery = _delivery(world, fake_crm, django_capture_on_commit_callbacks)
    settings.INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP = False
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk)[0] == "dead"
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("Refused:") and fake_crm.state.requests == []


def test_the_sweep_sends_deliveries_whose_task_was_lost(
    world, fake_crm, eager_celery, django_capture_on_commit_callbacks
):
    delivery = _delivery(world, fake_crm, django_capture_on_commit_callbacks)
    assert tasks.crm_deliveries_sweep() == 0  # fresh: its own task is still on its way
    CRMDelivery.objects.filter(pk=delivery.pk).update(
        status="sending", next_attempt_at=timezone.now() - timedelta(seconds=1)
    )  # a worker died mid-attempt
    assert tasks.crm_deliveries_sweep() == 1
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and len(fake_crm.state.received) == 1


def test_delivery_log_escapes_and_keeps_a_constant_query_count(
    world, client_for, fake_crm, django_assert_max_num_queries
):
    crm = _crm(world, fake_crm)
    CRMDelivery.objects.bulk_create(
        CRMDelivery(agency=world.agency, crm=crm, event_id=n, kind="fan.created", payload={}, status="dead",
                    attempts=6, response_code=500, last_error="<script>alert(1)</script>")
        for n in range(40)
    )  # fmt: skip
    client = client_for(world.owner)
    client.get(f"/integrations/crm/{crm.pk}/")
    with django_assert_max_num_queries(14):
        page = client.get(f"/integrations/crm/{crm.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("Replay</button>") == crm_services.DELIVERIES_PER_PAGE
    with django_assert_max_num_queries(14):
        client.get(f"/integrations/crm/{crm.pk}/?page=2", HTTP_HX_REQUEST="true")
    assert "40" in client.get("/integrations/crm/").content.decode()  # dead count on the list


# --- Inbound -------------------------------------------------------------------------------------------


def _inbound(client, crm, payload, *, secret=None, header=None):
    body = json.dumps(payload).encode()
    headers = {"HTTP_HUNTAZE_SIGNATURE": header if header is not None else sign(secret or crm.secret, body)}
    return client.post(f"/integrations/crm/{crm.public_id}/inbound/", body, content_type="application/json", **headers)


def test_inbound_update_changes_mapped_fan_fields_once(world, client, fake_crm):
    crm = _crm(world, fake_crm, mapping={"display_name": "full_name", "tags": "labels", "note": "crm_note"})
    fan = FanFactory(creator=world.creator, display_name="Old Name")
    payload = {
        "id": "crm-evt-1",
        "type": "fan.updated",
        "data": {"fan_id": fan.pk, "fields": {"full_name": "New <b>Name</b>", "labels": ["VIP", "whale"],
                                              "crm_note": "Called back", "total_spent": "9999"}},
    }  # fmt: skip
    response = _inbound(client, crm, payload)
    assert response.status_code == 200 and response.json() == {
        "id": "crm-evt-1",
        "status": "processed",
        "duplicate": False,
    }
    fan.refresh_from_db()
    assert fan.display_name == "New <b>Name</b>" and str(fan.total_spent) != "9999"
    assert sorted(fan.tags.values_list("name", flat=True)) == ["vip", "whale"]
    assert FanNote.objects.get(fan=fan).text == "Called back"
    event = CRMInboundEvent.objects.get()
    assert "total_spent" in event.note  # named as not writable
    again = _inbound(client, crm, payload)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert FanNote.objects.filter(fan=fan).count() == 1 and CRMInboundEvent.objects.count() == 1


@pytest.mark.parametrize("case", ["missing", "wrong_secret", "stale", "tampered", "huge_time", "not_ascii"])
def test_bad_signature_is_401_and_nothing_is_stored(world, client, fake_crm, case):
    crm = _crm(world, fake_crm)
    payload = {"id": "e1", "type": "fan.updated", "data": {}}
    body = json.dumps(payload).encode()
    header = {
        "missing": "",
        "wrong_secret": sign("whsec_other", body),
        "stale": sign(crm.secret, body, timestamp=int(timezone.now().timestamp()) - 3600),
        "tampered": sign(crm.secret, body + b" "),
        "huge_time": "t=" + "9" * 400 + ",v1=" + "0" * 64,
        "not_ascii": f"t={int(timezone.now().timestamp())},v1=" + "é" * 64,
    }[case]
    response = _inbound(client, crm, payload, header=header)
    assert response.status_code == 401 and response.json()["error"] == "bad_signature"
    assert not CRMInboundEvent.objects.exists()


def test_inbound_for_another_agencys_fan_fails_without_touching_it(world, other_world, client, fake_crm):
    crm = _crm(world, fake_crm, mapping={"display_name": "full_name"})
    victim = FanFactory(creator=other_world.creator, display_name="Theirs")
    response = _inbound(
        client, crm, {"id": "e2", "type": "fan.updated", "data": {"fan_id": victim.pk, "fields": {"full_name": "x"}}}
    )
    assert response.status_code == 200 and response.json()["status"] == "failed"
    victim.refresh_from_db()
    assert victim.display_name == "Theirs"


def test_inbound_bad_bodies_and_unknown_types(world, client, fake_crm):
    crm = _crm(world, fake_crm)
    not_json = b"not json"
    response = client.post(
        f"/integrations/crm/{crm.public_id}/inbound/", not_json, content_type="application/json",
        HTTP_HUNTAZE_SIGNATURE=sign(crm.secret, not_json),
    )  # fmt: skip
    assert response.status_code == 400
    assert _inbound(client, crm, {"type": "fan.updated"}).status_code == 400  # no id
    assert _inbound(client, crm, {"id": "e3", "type": "deal.won", "data": {}}).json()["status"] == "ignored"
    not_finite = b'{"id": "e5", "type": "fan.updated", "data": {"fan_id": 1e999, "fields": {}}}'
    response = client.post(
        f"/integrations/crm/{crm.public_id}/inbound/", not_finite, content_type="application/json",
        HTTP_HUNTAZE_SIGNATURE=sign(crm.secret, not_finite),
    )  # fmt: skip
    assert response.status_code == 400 and not CRMInboundEvent.objects.filter(event_id="e5").exists()
    huge = {"id": "e6", "type": "fan.updated", "data": {"fan_id": 10**30, "fields": {"note": "x"}}}
    assert _inbound(client, crm, huge).json()["status"] == "failed"  # no such fan, not a database error
    CRMConnection.objects.filter(pk=crm.pk).update(active=False)
    assert _inbound(client, crm, {"id": "e4", "type": "fan.updated", "data": {}}).status_code == 404


# --- A real worker ------------------------------------------------------------------------------------


@pytest.mark.worker
def test_a_real_worker_retries_an_outage_and_delivers_once(transactional_db, fake_crm):
    """The commit queues the task on the test run's broker; a real Celery worker process sends it,
    meets a 503, waits its backoff and delivers; the CRM takes the event exactly once."""
    import time

    from tests.conftest import build_world
    from tests.processes import celery_worker_args, running

    world = build_world("Worker")
    crm = _crm(world, fake_crm, kinds=["fan.created"])
    fake_crm.fail_next(503, times=1)
    messaging.fan_upsert(creator=world.creator, platform="onlyfans", platform_fan_id="w-1", username="worker")
    delivery = CRMDelivery.objects.get(crm=crm)  # written by the subscriber after the commit
    env = {"INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP": "true", "INTEGRATIONS_CRM_RETRY_BASE_SECONDS": "0.5",
           "INTEGRATIONS_CRM_RETRY_MAX_SECONDS": "1"}  # fmt: skip
    with running(celery_worker_args(), env=env):
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            delivery.refresh_from_db()
            if delivery.status == "delivered":
                break
            time.sleep(0.2)
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 2, 200)
    assert [request["status"] for request in fake_crm.state.requests] == [503, 200]
    assert len(fake_crm.state.received) == 1
