"""API: campaigns from draft to done (create, preview, schedule, start, pause, resume, cancel),
edits, stats and deliveries, validation errors naming the field, and who may see and do what."""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.campaigns import services
from apps.campaigns.models import Campaign, CampaignSettings, CampaignStatus
from apps.delivery.services import delivery_pump
from tests.campaigns.conftest import make_campaign
from tests.messaging.api_helpers import error, token_client
from tests.messaging.factories import FanFactory, MessageFactory, PurchaseFactory, SegmentFactory

pytestmark = pytest.mark.django_db

JSON = "application/json"


def body(world, fans, **overrides) -> dict:
    values = {
        "creator_id": world.creator.pk,
        "name": "Friday drop",
        "text": "Hey {fan.first_name|babe}, new set tonight!",
        "fan_ids": [fan.pk for fan in fans],
    }
    values.update(overrides)
    return values


# --- From draft to done -------------------------------------------------------------------------


def test_create_preview_schedule_start_pause_resume_and_finish(world, fans, django_capture_on_commit_callbacks):
    client = token_client(world.manager)
    response = client.post("/api/v1/campaigns", body(world, fans), content_type=JSON)
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["status"], created["creator_id"], created["fan_ids"]) == (
        "draft",
        world.creator.pk,
        [fan.pk for fan in fans],
    )
    assert created["created_by_email"] == world.manager.user.email
    assert created["stats"] == {
        "targeted": 0, "queued": 0, "retrying": 0, "sent": 0, "dead": 0, "rejected": 0, "cancelled": 0,
        "sent_last_minute": 0, "percent": 100, "unlocked": 0, "revenue": {},
    }  # fmt: skip
    url = f"/api/v1/campaigns/{created['id']}"

    preview = client.get(f"{url}/preview").json()
    assert (preview["audience"], preview["excluded"], preview["recipients"], preview["problems"]) == (5, 0, 5, [])
    assert preview["messages"] == [
        {
            "fan_id": fan.pk,
            "username": fan.username,
            "display_name": fan.display_name,
            "text": f"Hey Fan{i}, new set tonight!",
            "personalised": False,
        }
        for i, fan in enumerate(fans[:3])
    ]

    with django_capture_on_commit_callbacks():
        response = client.post(f"{url}/schedule")
    assert response.status_code == 200 and response.json()["status"] == "scheduled"
    assert services.campaign_start(campaign_id=created["id"]) == CampaignStatus.SENDING
    detail = client.get(url).json()
    assert detail["status"] == "sending" and detail["started_at"]
    assert (detail["stats"]["targeted"], detail["stats"]["queued"], detail["stats"]["percent"]) == (5, 5, 0)

    response = client.post(f"{url}/pause")
    assert response.status_code == 200 and response.json()["status"] == "paused"
    held = client.get(f"{url}/deliveries?status=held").json()
    assert held["count"] == 5
    assert [item["recipient_id"] for item in held["items"]] == [fan.platform_fan_id for fan in fans]
    assert set(held["items"][0]) == {
        "id", "kind", "platform", "recipient_id", "recipient_count", "rejected_count", "status", "attempts",
        "last_error", "sent_at",
    }  # fmt: skip
    assert (held["items"][0]["kind"], held["items"][0]["recipient_count"]) == ("direct", 1)

    with django_capture_on_commit_callbacks():
        response = client.post(f"{url}/resume")
    assert response.status_code == 200 and response.json()["status"] == "sending"
    delivery_pump(creator_id=world.creator.pk, platform="onlyfans", seconds=5)
    sent = client.get(f"{url}/deliveries?status=sent").json()
    assert sent["count"] == 5 and all(item["sent_at"] for item in sent["items"])
    stats = client.get(url).json()["stats"]
    assert (stats["sent"], stats["queued"], stats["percent"], stats["sent_last_minute"]) == (5, 0, 100, 5)

    services.campaigns_tick()
    assert client.get(url).json()["status"] == "completed"
    for action in ("pause", "resume", "cancel", "schedule"):
        response = client.post(f"{url}/{action}")
        assert response.status_code == 409, action
        assert error(response)["code"] == "conflict" and "completed" in error(response)["message"]


def test_the_stats_count_ppv_unlocks_and_their_revenue(world, fans):
    campaign = make_campaign(world, fan_ids=[fans[0].pk], ppv_price=Decimal("12.00"), media=["vault-1"])
    message = MessageFactory(
        conversation__fan=fans[0], direction="out", source="campaign", status="sent", campaign_id=campaign.pk,
        ppv_price=Decimal("12.00"), unlocked_at=timezone.now(),
    )  # fmt: skip
    PurchaseFactory(fan=fans[0], kind="ppv", amount=Decimal("12.00"), currency="USD", message=message)
    stats = token_client(world.viewer).get(f"/api/v1/campaigns/{campaign.pk}").json()["stats"]
    assert (stats["unlocked"], stats["revenue"]) == (1, {"USD": "12.00"})


def test_cancel_stops_what_is_unsent(world, fans, django_capture_on_commit_callbacks):
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    client = token_client(world.owner)
    with django_capture_on_commit_callbacks():
        client.post(f"/api/v1/campaigns/{campaign.pk}/schedule")
    services.campaign_start(campaign_id=campaign.pk)
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/cancel")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["stats"]["cancelled"]) == ("cancelled", 5)
    assert response.json()["finished_at"]
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/deliveries?status=pending").json()["count"] == 0
    assert client.post(f"/api/v1/campaigns/{campaign.pk}/resume").status_code == 409


def test_a_price_in_exponent_notation_is_answered_to_the_cent(world, fans):
    world.creator.ppv_price_max = Decimal("50.00")
    world.creator.save()
    response = token_client(world.owner).post(
        "/api/v1/campaigns", body(world, fans, ppv_price="1E+1", media=["vault-1"]), content_type=JSON
    )
    assert response.status_code == 201, response.content
    assert response.json()["ppv_price"] == "10.00"


def test_a_naive_send_time_is_the_creators_local_time(world, fans):
    world.creator.timezone = "America/New_York"
    world.creator.save()
    local = (timezone.now() + timedelta(days=2)).replace(tzinfo=None, microsecond=0)
    response = token_client(world.owner).post(
        "/api/v1/campaigns", body(world, fans, send_at=local.isoformat()), content_type=JSON
    )
    assert response.status_code == 201, response.content
    send_at = local.replace(tzinfo=ZoneInfo("America/New_York"))
    assert Campaign.objects.get(pk=response.json()["id"]).send_at == send_at
    assert response.json()["send_at"] == send_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    aware = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    response = token_client(world.owner).post(
        "/api/v1/campaigns", body(world, fans, send_at=aware.isoformat()), content_type=JSON
    )
    assert Campaign.objects.get(pk=response.json()["id"]).send_at == aware


# --- Edits ------------------------------------------------------------------------------------


def test_editing_keeps_what_is_left_out_and_returns_a_scheduled_campaign_to_draft(world, fans):
    send_at = timezone.now() + timedelta(days=1)
    campaign = make_campaign(world, fan_ids=[fans[0].pk], send_at=send_at, media=["vault-1"])
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    client = token_client(world.manager)
    response = client.patch(f"/api/v1/campaigns/{campaign.pk}", {"text": "Changed"}, content_type=JSON)
    assert response.status_code == 200, response.content
    edited = response.json()
    assert (edited["status"], edited["text"], edited["name"], edited["fan_ids"], edited["media"]) == (
        "draft",
        "Changed",
        "Friday drop",
        [fans[0].pk],
        ["vault-1"],
    )
    segment = SegmentFactory(agency=world.agency, creator=world.creator, filters={})
    edited = client.patch(
        f"/api/v1/campaigns/{campaign.pk}", {"segment_id": segment.pk, "send_at": None}, content_type=JSON
    ).json()
    assert (edited["segment_id"], edited["fan_ids"], edited["fan_count"], edited["send_at"]) == (
        segment.pk,
        [],
        0,
        None,
    )
    edited = client.patch(f"/api/v1/campaigns/{campaign.pk}", {"fan_ids": [fans[1].pk]}, content_type=JSON).json()
    assert (edited["segment_id"], edited["fan_ids"]) == (None, [fans[1].pk])


def test_a_started_campaign_cannot_be_edited(world, fans):
    campaign = make_campaign(world, fan_ids=[fans[0].pk])
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    services.campaign_start(campaign_id=campaign.pk)
    response = token_client(world.owner).patch(
        f"/api/v1/campaigns/{campaign.pk}", {"text": "Too late"}, content_type=JSON
    )
    assert response.status_code == 409
    assert "sending" in error(response)["message"]
    campaign.refresh_from_db()
    assert campaign.text != "Too late"


# --- Validation: the field is named, nothing is saved -----------------------------------------

PAST = "2020-01-01T10:00:00Z"


@pytest.mark.parametrize(
    ("overrides", "status", "field"),
    [
        ({"name": None}, 422, "name"),
        ({"name": "   "}, 400, "name"),
        ({"name": "x" * 121}, 422, "name"),
        ({"text": "Hi {fan.age}"}, 400, "text"),
        ({"text": "x" * 1001}, 400, "text"),
        ({"ppv_price": "0.001", "media": ["vault-1"]}, 422, "ppv_price"),
        ({"ppv_price": "0.50", "media": ["vault-1"]}, 400, "ppv_price"),
        ({"ppv_price": "15.00"}, 400, "media"),
        ({"media": ["v"] * 21}, 422, "media"),
        ({"send_at": PAST}, 400, "send_at"),
        ({"send_at": "next friday"}, 422, "send_at"),
        ({"send_at": "2999-01-01T10:00:00Z"}, 400, "send_at"),
        ({"fan_ids": []}, 400, "segment_id"),
        ({"fan_ids": [0]}, 422, "fan_ids.0"),
        ({"exclude_messaged_within_hours": 0}, 422, "exclude_messaged_within_hours"),
        ({"exclude_no_spend_days": 4000}, 422, "exclude_no_spend_days"),
        ({"creator_id": "one"}, 422, "creator_id"),
    ],
)
def test_bad_input_names_the_field_and_saves_nothing(world, fans, overrides, status, field):
    values = body(world, fans, **overrides)
    values = {key: value for key, value in values.items() if value is not None}
    response = token_client(world.owner).post("/api/v1/campaigns", values, content_type=JSON)
    assert response.status_code == status, response.content
    assert field in error(response)["fields"], error(response)
    assert not Campaign.objects.exists()


def test_another_creators_fans_and_a_segment_with_fans_are_refused(world, fans):
    client = token_client(world.owner)
    stranger = FanFactory(creator=world.other_creator)
    response = client.post("/api/v1/campaigns", body(world, [fans[0], stranger]), content_type=JSON)
    assert response.status_code == 400 and "not Velvet Star's fans" in error(response)["fields"]["fan_ids"][0]
    other_segment = SegmentFactory(agency=world.agency, creator=world.other_creator)
    response = client.post("/api/v1/campaigns", body(world, [], segment_id=other_segment.pk), content_type=JSON)
    assert response.status_code == 400 and "segment_id" in error(response)["fields"]
    segment = SegmentFactory(agency=world.agency, creator=world.creator)
    response = client.post("/api/v1/campaigns", body(world, fans, segment_id=segment.pk), content_type=JSON)
    assert response.status_code == 400 and "not both" in error(response)["fields"]["fan_ids"][0]
    assert not Campaign.objects.exists()


def test_an_archived_creator_is_refused_on_creator_id(world, fans):
    world.creator.is_archived = True
    world.creator.save()
    response = token_client(world.owner).post("/api/v1/campaigns", body(world, fans), content_type=JSON)
    assert response.status_code == 400 and "archived" in error(response)["fields"]["creator_id"][0]


def test_list_filters_are_checked(world):
    client = token_client(world.owner)
    response = client.get("/api/v1/campaigns?status=sent")
    assert response.status_code == 422 and "status" in error(response)["fields"]
    response = client.get("/api/v1/campaigns/1/deliveries?status=lost")
    assert response.status_code == 422 and "status" in error(response)["fields"]


# --- Tenancy and roles ------------------------------------------------------------------------


def test_another_agencys_campaign_is_not_found(world, other_world, fans):
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    outsider = token_client(other_world.owner)
    url = f"/api/v1/campaigns/{campaign.pk}"
    for response in (
        outsider.get(url),
        outsider.get(f"{url}/preview"),
        outsider.get(f"{url}/deliveries"),
        outsider.patch(url, {"name": "Hijacked"}, content_type=JSON),
        *(outsider.post(f"{url}/{action}") for action in ("schedule", "approve", "pause", "resume", "cancel")),
    ):
        assert response.status_code == 404 and error(response)["code"] == "not_found"
    assert outsider.get("/api/v1/campaigns").json() == {"items": [], "count": 0}
    assert outsider.get(f"/api/v1/campaigns?creator_id={world.creator.pk}").status_code == 404
    response = outsider.post("/api/v1/campaigns", body(world, fans), content_type=JSON)
    assert response.status_code == 404  # the creator is not theirs
    own_fan = FanFactory(creator=other_world.creator)
    segment = SegmentFactory(agency=world.agency)
    response = outsider.post("/api/v1/campaigns", body(other_world, [], segment_id=segment.pk), content_type=JSON)
    assert response.status_code == 404  # nor the segment
    assert own_fan and Campaign.objects.filter(agency=other_world.agency).count() == 0
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status) == ("Friday drop", CampaignStatus.DRAFT)


def test_a_viewer_and_a_read_token_read_but_cannot_write(world, fans, client_for):
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    url = f"/api/v1/campaigns/{campaign.pk}"
    for client in (client_for(world.viewer), token_client(world.owner, scope="read")):
        assert client.get("/api/v1/campaigns").json()["count"] == 1
        for path in (url, f"{url}/preview", f"{url}/deliveries"):
            assert client.get(path).status_code == 200, path
        responses = [
            client.post("/api/v1/campaigns", body(world, fans), content_type=JSON),
            client.patch(url, {"name": "Renamed"}, content_type=JSON),
            *(client.post(f"{url}/{action}") for action in ("schedule", "approve", "cancel")),
        ]
        assert [response.status_code for response in responses] == [403] * 5
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status, Campaign.objects.count()) == ("Friday drop", CampaignStatus.DRAFT, 1)


def test_a_chatter_works_only_with_their_assigned_creator(world, fans, client_for):
    other_fan = FanFactory(creator=world.other_creator)
    theirs = make_campaign(world, fan_ids=[fans[0].pk])
    not_theirs = make_campaign(world, creator=world.other_creator, fan_ids=[other_fan.pk], name="Nova drop")
    client = client_for(world.chatter)  # the browser session works as well as a token
    listing = client.get("/api/v1/campaigns").json()
    assert [item["id"] for item in listing["items"]] == [theirs.pk]
    assert client.get(f"/api/v1/campaigns/{not_theirs.pk}").status_code == 404
    assert client.post(f"/api/v1/campaigns/{not_theirs.pk}/cancel").status_code == 404
    assert client.get(f"/api/v1/campaigns?creator_id={world.other_creator.pk}").status_code == 404
    response = client.post(
        "/api/v1/campaigns", body(world, [other_fan], creator_id=world.other_creator.pk), content_type=JSON
    )
    assert response.status_code == 404
    response = client.post("/api/v1/campaigns", body(world, fans), content_type=JSON)
    assert response.status_code == 201 and response.json()["created_by_email"] == world.chatter.user.email


def test_a_chatters_large_campaign_waits_for_approval(world, fans, django_capture_on_commit_callbacks):
    CampaignSettings.objects.create(agency=world.agency, approval_above=3)
    chatter = token_client(world.chatter)
    created = chatter.post("/api/v1/campaigns", body(world, fans), content_type=JSON).json()
    url = f"/api/v1/campaigns/{created['id']}"
    with django_capture_on_commit_callbacks():
        assert chatter.post(f"{url}/schedule").json()["status"] == "awaiting"
    assert chatter.post(f"{url}/approve").status_code == 403
    with django_capture_on_commit_callbacks():
        response = token_client(world.manager).post(f"{url}/approve")
    assert response.status_code == 200
    approved = response.json()
    assert (approved["status"], approved["approved_by_email"]) == ("scheduled", world.manager.user.email)
    assert approved["approved_at"]


# --- Lists ------------------------------------------------------------------------------------


def test_the_list_is_paginated_filtered_and_costs_the_same_whatever_its_length(
    world, fans, django_assert_max_num_queries
):
    for index in range(27):
        make_campaign(world, fan_ids=[fans[index % 5].pk], name=f"Drop {index}")
    other_fan = FanFactory(creator=world.other_creator)
    nova = make_campaign(world, creator=world.other_creator, fan_ids=[other_fan.pk], name="Nova drop")
    services.campaign_schedule(membership=world.owner, campaign=nova)
    client = token_client(world.owner)
    # token, its stamp, the agency's plan (billing's entitlements, not cached yet), count, page,
    # and for the whole page's stats: deliveries by status, those sent in the last minute, PPV
    # unlocks, their revenue
    with django_assert_max_num_queries(9):
        first = client.get("/api/v1/campaigns").json()
    assert (first["count"], len(first["items"])) == (28, 25)
    assert first["items"][0]["id"] == nova.pk  # newest first
    second = client.get("/api/v1/campaigns?page=2").json()
    assert len(second["items"]) == 3
    assert {item["id"] for item in first["items"]}.isdisjoint(item["id"] for item in second["items"])
    assert len(client.get("/api/v1/campaigns?page_size=10").json()["items"]) == 10
    scheduled = client.get("/api/v1/campaigns?status=scheduled").json()
    assert [item["id"] for item in scheduled["items"]] == [nova.pk]
    by_creator = client.get(f"/api/v1/campaigns?creator_id={world.creator.pk}").json()
    assert by_creator["count"] == 27 and {item["creator_id"] for item in by_creator["items"]} == {world.creator.pk}
    assert client.get("/api/v1/campaigns?page=100000").json()["items"] == []


def test_deliveries_are_paginated(world, django_capture_on_commit_callbacks):
    fans = [FanFactory(creator=world.creator, display_name=f"Fan{index}") for index in range(55)]
    campaign = make_campaign(world, fan_ids=[fan.pk for fan in fans])
    services.campaign_schedule(membership=world.owner, campaign=campaign)
    services.campaign_start(campaign_id=campaign.pk)
    client = token_client(world.viewer)
    first = client.get(f"/api/v1/campaigns/{campaign.pk}/deliveries").json()
    assert (first["count"], len(first["items"])) == (55, 50)
    last = client.get(f"/api/v1/campaigns/{campaign.pk}/deliveries?page=2").json()
    ids = [item["id"] for item in first["items"] + last["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 55
