"""OnlyFans/Fansly through the third-party API connector: campaigns and deliveries of a creator
with a live connection reach the (loopback, fake) provider once per fan through delivery's
pipeline; its errors come back permanent or retryable with Retry-After; the API base URL is
checked before anything is connected to; a creator without a connection keeps the simulator."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.campaigns import services as campaigns
from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.delivery.services import delivery_enqueue_mass, delivery_pump, delivery_send
from apps.integrations import services
from apps.integrations.connectors import RefusedApiURL, ThirdPartyApiConnector, api_url_check
from apps.integrations.models import Connection, ConnectionStatus
from tests.campaigns.conftest import make_campaign
from tests.delivery.conftest import enqueue
from tests.integrations.helpers import raw_column
from tests.messaging.factories import FanFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(api_server, settings):
    """The fake provider with one account (acct-1, key-1) and three fans; only loopback reachable."""
    settings.INTEGRATIONS_API_LOOPBACK_ONLY = True
    settings.INTEGRATIONS_API_ALLOW_LOOPBACK = True
    api_server.reset()
    account = api_server.account("acct-1", "key-1")
    api_server.seed(account, fans=3)
    yield api_server
    api_server.reset()


@pytest.fixture
def live(api, world):
    connection, _ = services.api_connection_configure(
        membership=world.owner, creator=world.creator, platform="onlyfans",
        api_base_url=api.base_url, api_key="key-1", api_account_id="acct-1",
    )  # fmt: skip
    return connection


def sent_to_fake(api) -> list[dict]:
    return api.requests_to("POST", "/messages")


def test_a_campaign_to_a_connected_creator_reaches_the_provider_once_per_fan(
    live, api, world, django_capture_on_commit_callbacks
):
    fans = [FanFactory(creator=world.creator, platform="onlyfans", platform_fan_id=f"fan-{n}") for n in (1, 2, 3)]
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans], text="New set tonight!")
    with django_capture_on_commit_callbacks():
        campaigns.campaign_schedule(membership=world.owner, campaign=campaign)
        assert campaigns.campaign_start(campaign_id=campaign.pk) == "sending"
    delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    rows = Delivery.objects.filter(source_id=campaign.pk, creator=world.creator)
    assert sorted(rows.values_list("status", flat=True)) == ["sent"] * 3
    assert all(not row.platform_message_id.startswith("sim_") for row in rows)
    posts = sent_to_fake(api)
    assert sorted(p["path"].split("/")[-2] for p in posts) == ["fan-1", "fan-2", "fan-3"]
    assert all(p["headers"]["authorization"] == "Bearer key-1" for p in posts)
    assert '"text": "New set tonight!"' in posts[0]["body"] and '"price": null' in posts[0]["body"]
    # Each fan got one message on the platform; the provider saw each delivery's key (agency-qualified).
    keys = {f"{world.agency.pk}:{row.idempotency_key}" for row in rows}
    assert {p["headers"]["idempotency-key"] for p in posts} == keys
    assert len([m for m in api.account("acct-1").messages if not m["from_fan"]]) == 3
    assert SimulatedOutboundMessage.objects.count() == 0


def test_a_resend_after_a_lost_answer_is_still_one_message(live, api, world):
    delivery = enqueue(world, recipient_id="fan-2")
    connector = ThirdPartyApiConnector(platform="onlyfans")
    first = connector.send(delivery)
    second = connector.send(delivery)  # the worker was killed after the provider took it
    assert first.platform_message_id == second.platform_message_id
    assert len([m for m in api.account("acct-1").messages if not m["from_fan"]]) == 1


def test_without_a_connection_the_simulated_connector_sends(api, world):
    delivery = enqueue(world, creator_id=world.other_creator.pk)
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    delivery.refresh_from_db()
    assert delivery.platform_message_id.startswith("sim_") and SimulatedOutboundMessage.objects.count() == 1
    assert sent_to_fake(api) == []


def test_a_429_is_retried_after_the_providers_retry_after(live, api, world):
    api.fail_next(429, retry_after=42)
    delivery = enqueue(world, recipient_id="fan-1")
    before = timezone.now()
    assert delivery_send(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.next_attempt_at >= before + timedelta(seconds=42)
    assert "per-minute limit" in delivery.last_error and "42" in delivery.last_error


def test_the_providers_own_per_minute_limit_is_honoured(live, api, world):
    api.state.limit_per_minute = 1
    first, second = enqueue(world, recipient_id="fan-1"), enqueue(world, recipient_id="fan-2")
    assert delivery_send(delivery_id=first.pk) == "sent"
    assert delivery_send(delivery_id=second.pk) == "failed"  # the key's minute is spent: 429 + Retry-After
    second.refresh_from_db()
    assert second.next_attempt_at > timezone.now() + timedelta(seconds=1) and second.status == "failed"


def test_a_4xx_is_permanent(live, api, world):
    delivery = enqueue(world, recipient_id="blocked-7")
    assert delivery_send(delivery_id=delivery.pk) == "dead"
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and "blocked the creator" in delivery.last_error and "403" in delivery.last_error


def test_a_5xx_is_retryable_and_the_retry_sends_once(live, api, world, settings):
    settings.DELIVERY_RETRY_BASE_SECONDS = 0
    settings.DELIVERY_RETRY_MAX_SECONDS = 0
    api.fail_next(503)
    delivery = enqueue(world, recipient_id="fan-3")
    assert delivery_send(delivery_id=delivery.pk) == "failed"
    assert "HTTP 503" in Delivery.objects.get(pk=delivery.pk).last_error
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    assert len([m for m in api.account("acct-1").messages if not m["from_fan"]]) == 1


def test_a_mass_message_is_one_request_and_rejected_fans_are_recorded(live, api, world):
    delivery = delivery_enqueue_mass(
        agency_id=world.agency.pk, creator_id=world.creator.pk, platform="onlyfans",
        recipient_ids=["fan-1", "fan-2", "blocked-1"], text="Weekend drop", ppv_price=Decimal("9.99"),
        idempotency_key="mass-1",
    )  # fmt: skip
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    delivery.refresh_from_db()
    assert len(api.requests_to("POST", "/mass-messages")) == 1 and delivery.rejected_count == 1
    assert delivery.platform_message_id.startswith("mm")


def test_a_connection_that_needs_reconnecting_is_never_simulated(live, api, world):
    Connection.objects.filter(pk=live.pk).update(status=ConnectionStatus.NEEDS_RECONNECT)
    delivery = enqueue(world, recipient_id="fan-1")
    assert delivery_send(delivery_id=delivery.pk) == "dead"
    assert "reconnect" in Delivery.objects.get(pk=delivery.pk).last_error
    assert sent_to_fake(api) == [] and SimulatedOutboundMessage.objects.count() == 0


def test_a_bad_api_key_is_a_permanent_error(live, api, world):
    connection = Connection.objects.get(pk=live.pk)
    connection.api_key = "wrong"
    connection.save()
    delivery = enqueue(world, recipient_id="fan-1")
    assert delivery_send(delivery_id=delivery.pk) == "dead"
    assert "HTTP 401" in Delivery.objects.get(pk=delivery.pk).last_error


def test_the_api_key_is_encrypted_at_rest(live):
    assert "key-1" not in raw_column("integrations_connection", "api_key", live.pk)


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://api.example.com/v1", "https://"),
        ("https://10.1.2.3/v1", "private"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://user:pw@api.example.com", "user name"),
        ("http://192.168.1.10/v1", "https://"),
    ],
)
def test_the_base_url_policy_refuses_before_connecting(settings, url, message):
    settings.INTEGRATIONS_API_ALLOW_LOOPBACK = True
    with pytest.raises(RefusedApiURL, match=message):
        api_url_check(url, resolve=False)


def test_plain_http_to_loopback_only_where_allowed(settings):
    settings.INTEGRATIONS_API_ALLOW_LOOPBACK = True
    api_url_check("http://127.0.0.1:8000/v1")
    settings.INTEGRATIONS_API_ALLOW_LOOPBACK = False  # production
    with pytest.raises(RefusedApiURL, match="https://"):
        api_url_check("http://127.0.0.1:8000/v1")
    with pytest.raises(RefusedApiURL, match="this server itself"):
        api_url_check("https://127.0.0.1/v1")


def test_in_tests_a_public_host_is_refused_before_any_request(api, world):
    services.api_connection_configure(
        membership=world.owner, creator=world.creator, platform="onlyfans",
        api_base_url="https://api.example-of-api.com/v1", api_key="key-1", api_account_id="acct-1",
    )  # fmt: skip
    delivery = enqueue(world, recipient_id="fan-1")
    assert delivery_send(delivery_id=delivery.pk) == "dead"
    assert "Only loopback addresses" in Delivery.objects.get(pk=delivery.pk).last_error


def test_the_form_on_the_creator_page_saves_a_loopback_provider_and_refuses_a_private_one(api, world, client_for):
    client = client_for(world.owner)
    form = {"platform": "onlyfans", "onlyfans-api_base_url": api.base_url, "onlyfans-api_key": "key-1",
            "onlyfans-api_account_id": "acct-1"}  # fmt: skip
    response = client.post(f"/integrations/creators/{world.creator.pk}/api/", form)
    assert response.status_code == 200 and "webhook" in response.content.decode().lower()
    assert Connection.objects.get(creator=world.creator, platform="onlyfans").api_base_url == api.base_url
    refused = client.post(
        f"/integrations/creators/{world.creator.pk}/api/", {**form, "onlyfans-api_base_url": "https://10.0.0.8/v1"}
    )
    assert refused.status_code == 400 and "private" in refused.content.decode()


def test_reads_statistics_and_posts(live, api):
    connector = ThirdPartyApiConnector(platform="onlyfans")
    assert connector.account_status(live).account_id == "acct-1"
    assert connector.statistics(live)["fans"]["total"] == 3
    post = connector.publish_post(live, text="New photo set", idempotency_key="post-1")
    again = connector.publish_post(live, text="New photo set", idempotency_key="post-1")
    assert post.post_id == again.post_id and post.status == "published"
    assert connector.post_status(live, post_id=post.post_id).status == "published"
