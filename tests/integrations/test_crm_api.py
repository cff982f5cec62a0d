# ruff: noqa: F811 (pytest fixtures imported from test_crm.py and tests/fakes/resolver.py)
"""CRM connections over /api/v1/integrations/crm: list, create (the secret once), read, update,
delete, a signed test event, the delivery log and replay; roles, other agencies (404) and secrets
never answered after the create. And the address rules of an attempt: one DNS resolution, checked,
and the connection made to what was checked (a rebinding answer reaches nothing).

The CRM is tests/fakes/crm_server.py on 127.0.0.1; host names are scripted by
tests/fakes/resolver.py, and a connection to any non-loopback address fails the test."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.accounts import services as account_services
from apps.integrations import crm as crm_services
from apps.integrations.models import CRMConnection, CRMDelivery
from tests.fakes.resolver import loopback_only, resolver  # noqa: F401 (fixtures)
from tests.integrations.test_crm import _delivery, fake_crm  # noqa: F401 (fixtures, helpers)

pytestmark = pytest.mark.django_db
BASE = "/api/v1/integrations/crm"
PUBLIC = "93.184.216.34"  # only ever given to a check, never connected to


def token_client(membership) -> Client:
    _, secret = account_services.api_token_create(membership=membership, name="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def _post(client: Client, url: str, body: dict | None = None):
    return client.post(url, json.dumps(body or {}), content_type="application/json")


def _patch(client: Client, url: str, body: dict):
    return client.patch(url, json.dumps(body), content_type="application/json")


def _create(client: Client, fake_crm, **overrides):
    body = {"name": "HubCRM", "target_url": fake_crm.url, "event_kinds": ["fan.created", "purchase.recorded"],
            "field_mapping": {"username": "handle"}, **overrides}  # fmt: skip
    return _post(client, BASE, body)


# --- The API ------------------------------------------------------------------------------------------


def test_create_answers_the_secret_once_and_nothing_else_does(world, fake_crm):
    api = token_client(world.manager)
    response = _create(api, fake_crm)
    assert response.status_code == 201, response.content
    created = response.json()
    connection = CRMConnection.objects.get()
    assert created["signing_secret"] == connection.signing_secret and created["signing_secret"].startswith("whsec_")
    assert created["event_kinds"] == ["fan.created", "purchase.recorded"]
    assert created["field_mapping"] == {"username": "handle"} and created["dead_deliveries"] == 0
    assert created["inbound_url"] == f"http://testserver/integrations/crm/{connection.public_id}/inbound/"
    secret = connection.signing_secret
    answers = [
        api.get(BASE),
        api.get(f"{BASE}/{connection.pk}"),
        _patch(api, f"{BASE}/{connection.pk}", {"name": "Renamed"}),
        api.get(f"{BASE}/{connection.pk}/deliveries"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.content
        assert secret not in answer.content.decode() and "signing_secret" not in answer.json()
    assert api.get(BASE).json()["items"][0]["name"] == "Renamed"


def test_update_keeps_omitted_fields_and_refuses_bad_input_on_the_field(world, fake_crm, settings):
    api = token_client(world.owner)
    connection_id = _create(api, fake_crm).json()["id"]
    response = _patch(api, f"{BASE}/{connection_id}", {"active": False, "event_kinds": ["alert.fired"]})
    assert response.status_code == 200
    updated = response.json()
    assert (updated["active"], updated["event_kinds"], updated["name"]) == (False, ["alert.fired"], "HubCRM")
    assert updated["target_url"] == fake_crm.url and updated["field_mapping"] == {"username": "handle"}
    response = _patch(api, f"{BASE}/{connection_id}", {"field_mapping": {"favourite_colour": "colour"}})
    assert response.status_code == 400 and "field_mapping" in response.json()["error"]["fields"]
    settings.INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP = False  # production: https only, no private addresses
    response = _patch(api, f"{BASE}/{connection_id}", {"target_url": "https://10.1.2.3/hook"})
    assert response.status_code == 400 and "private" in response.json()["error"]["fields"]["target_url"][0]
    assert _patch(api, f"{BASE}/{connection_id}", {"event_kinds": ["fan.deleted"]}).status_code == 422
    response = _create(api, fake_crm, name="Other", target_url="http://crm.example.com/hook")
    assert response.status_code == 400 and "https://" in response.json()["error"]["fields"]["target_url"][0]
    assert _create(api, fake_crm, name="  ").status_code == 422
    for broken in ("https://[::1", "https://[::1/hook"):  # an unclosed IPv6 literal: urlsplit raises
        response = _create(api, fake_crm, name="Broken", target_url=broken)
        assert response.status_code == 400 and response.json()["error"]["fields"]["target_url"] == [
            "Enter a valid URL."
        ]
        response = _patch(api, f"{BASE}/{connection_id}", {"target_url": broken})
        assert response.status_code == 400 and "target_url" in response.json()["error"]["fields"]
    assert CRMConnection.objects.get().target_url == fake_crm.url and CRMConnection.objects.count() == 1


def test_a_duplicate_name_is_a_field_error(world, fake_crm):
    api = token_client(world.owner)
    assert _create(api, fake_crm).status_code == 201
    response = _create(api, fake_crm)
    assert response.status_code == 400 and "name" in response.json()["error"]["fields"]


def test_test_send_posts_a_signed_test_event_and_says_what_the_crm_answered(world, fake_crm):
    api = token_client(world.owner)
    created = _create(api, fake_crm, active=False).json()
    fake_crm.reset(secret=created["signing_secret"])
    response = _post(api, f"{BASE}/{created['id']}/test")
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["delivered"] is True and result["status_code"] == 200 and result["error"] == ""
    (event,) = fake_crm.state.received  # the fake checked the signature with its own HMAC code
    assert event["type"] == "test" and event["id"] == result["event_id"]
    assert fake_crm.state.requests[0]["headers"]["huntaze-event"] == "test"
    assert CRMDelivery.objects.count() == 0  # not in the delivery log
    fake_crm.fail_next(503)
    result = _post(api, f"{BASE}/{created['id']}/test").json()
    assert (result["delivered"], result["status_code"], result["error"]) == (False, 503, "HTTP 503")


def test_the_delivery_log_and_replay(world, fake_crm, eager_celery, django_capture_on_commit_callbacks, settings):
    settings.INTEGRATIONS_CRM_MAX_ATTEMPTS = 1
    delivery = _delivery(world, fake_crm, django_capture_on_commit_callbacks)
    fake_crm.fail_next(500)
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk) == ("dead", None)
    api = token_client(world.manager)
    log = api.get(f"{BASE}/{delivery.crm_id}/deliveries?status=dead").json()
    assert log["count"] == 1
    (row,) = log["items"]
    assert (row["id"], row["status"], row["response_code"], row["last_error"]) == (delivery.pk, "dead", 500, "HTTP 500")
    assert "payload" not in row
    assert api.get(f"{BASE}/{delivery.crm_id}/deliveries?status=delivered").json()["count"] == 0
    assert api.get(f"{BASE}/{delivery.crm_id}").json()["dead_deliveries"] == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(api, f"{BASE}/deliveries/{delivery.pk}/replay")
    assert response.status_code == 200 and response.json()["attempts"] == 0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1) and len(fake_crm.state.received) == 1
    CRMDelivery.objects.filter(pk=delivery.pk).update(status="sending")
    response = _post(api, f"{BASE}/deliveries/{delivery.pk}/replay")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


def test_delete(world, fake_crm):
    api = token_client(world.owner)
    connection_id = _create(api, fake_crm).json()["id"]
    assert api.delete(f"{BASE}/{connection_id}").status_code == 204
    assert not CRMConnection.objects.exists()
    assert api.get(f"{BASE}/{connection_id}").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "chatter"])
def test_readers_cannot_change_send_or_replay(world, fake_crm, django_capture_on_commit_callbacks, role):
    delivery = _delivery(world, fake_crm, django_capture_on_commit_callbacks)
    api = token_client(getattr(world, role))
    crm_id = delivery.crm_id
    assert api.get(BASE).json()["count"] == 1 and api.get(f"{BASE}/{crm_id}").status_code == 200
    assert api.get(f"{BASE}/{crm_id}/deliveries").json()["count"] == 1
    assert _create(api, fake_crm, name="Mine").status_code == 403
    assert _patch(api, f"{BASE}/{crm_id}", {"active": False}).status_code == 403
    assert api.delete(f"{BASE}/{crm_id}").status_code == 403
    assert _post(api, f"{BASE}/{crm_id}/test").status_code == 403
    assert _post(api, f"{BASE}/deliveries/{delivery.pk}/replay").status_code == 403
    assert CRMConnection.objects.get().active is True and fake_crm.state.requests == []
    assert CRMDelivery.objects.get().status == "pending"


def test_another_agency_gets_404_and_nothing_is_sent(world, other_world, fake_crm, django_capture_on_commit_callbacks):
    delivery = _delivery(world, fake_crm, django_capture_on_commit_callbacks)
    crm_id = delivery.crm_id
    outsider = token_client(other_world.owner)
    assert outsider.get(BASE).json()["items"] == []
    assert outsider.get(f"{BASE}/{crm_id}").status_code == 404
    assert outsider.get(f"{BASE}/{crm_id}/deliveries").status_code == 404
    assert _patch(outsider, f"{BASE}/{crm_id}", {"target_url": "https://attacker.example/"}).status_code == 404
    assert outsider.delete(f"{BASE}/{crm_id}").status_code == 404
    assert _post(outsider, f"{BASE}/{crm_id}/test").status_code == 404
    assert _post(outsider, f"{BASE}/deliveries/{delivery.pk}/replay").status_code == 404
    assert CRMConnection.objects.get().target_url == fake_crm.url and fake_crm.state.requests == []
    assert CRMDelivery.objects.get().status == "pending"


def test_a_read_token_cannot_send_a_test_event(world, fake_crm):
    connection_id = _create(token_client(world.owner), fake_crm).json()["id"]
    _, secret = account_services.api_token_create(membership=world.owner, name="read", scope="read")
    reader = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert reader.get(f"{BASE}/{connection_id}").status_code == 200
    assert _post(reader, f"{BASE}/{connection_id}/test").status_code == 403
    assert fake_crm.state.requests == []


# --- Where an attempt connects --------------------------------------------------------------------------


def test_dns_rebinding_after_the_save_reaches_nothing(world, fake_crm, settings, resolver):
    """Public when the connection was saved, loopback when the event is sent: refused by the
    connection's own check, before any request, and final (no retry)."""
    settings.INTEGRATIONS_CRM_ALLOW_LOOPBACK_HTTP = False
    resolver.answer("crm.rebind.test", PUBLIC, "127.0.0.1")
    connection, _ = crm_services.crm_create(
        membership=world.owner, name="Rebinding", target_url=fake_crm.url_for("crm.rebind.test", "https"),
        event_kinds=["fan.created"], field_mapping={},
    )  # fmt: skip
    assert resolver.lookups == ["crm.rebind.test"]  # the save-time check saw the public answer
    delivery = CRMDelivery.objects.create(
        agency=world.agency, crm=connection, event_id=1, kind="fan.created", payload={"id": "evt_1"}
    )
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk) == ("dead", None)
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("Refused:") and "private or internal" in delivery.last_error
    assert fake_crm.state.requests == []
    assert resolver.lookups == ["crm.rebind.test"] * 2  # one resolution for the attempt, the one checked
    result = crm_services.crm_test_send(membership=world.owner, crm=connection)
    assert result.delivered is False and "private or internal" in result.error and fake_crm.state.requests == []


def test_an_attempt_resolves_once_and_keeps_the_host_name(
    world, fake_crm, resolver, django_capture_on_commit_callbacks
):
    resolver.answer("localhost", "127.0.0.1")  # a loopback name, allowed over http in tests
    connection, secret = crm_services.crm_create(
        membership=world.owner, name="Local", target_url=fake_crm.url_for("localhost"), event_kinds=["fan.created"],
        field_mapping={},
    )  # fmt: skip
    fake_crm.reset(secret=secret)
    delivery = CRMDelivery.objects.create(
        agency=world.agency, crm=connection, event_id=2, kind="fan.created", payload={"id": "evt_2"}
    )
    resolver.lookups.clear()
    assert crm_services.crm_delivery_attempt(delivery_id=delivery.pk)[0] == "delivered"
    assert resolver.lookups == ["localhost"]
    (request,) = fake_crm.state.requests
    assert request["headers"]["host"] == fake_crm.url_for("localhost").split("/")[2]
