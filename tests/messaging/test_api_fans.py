"""API: fans: the list with its filters and badges, a fan's profile, tags, notes, purchases."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.messaging.models import FanNote, FanRules, FanTag
from tests.messaging.api_helpers import error, token_client
from tests.messaging.factories import FanFactory, FanTagFactory, PurchaseFactory, SegmentFactory


def _whale(world, **fields):
    return FanFactory(
        creator=world.creator,
        spent_tips=Decimal("400"),
        spent_ppv=Decimal("200"),
        total_spent=Decimal("600"),
        ppv_offered=4,
        ppv_bought=3,
        **fields,
    )


def test_fan_list_shows_badges_spend_split_and_buy_rate(world):
    whale = _whale(world, display_name="Big Spender")
    FanTagFactory(fan=whale, name="vip")
    FanFactory(creator=world.creator)
    body = token_client(world.owner).get("/api/v1/fans").json()
    assert body["count"] == 2
    first = body["items"][0]
    assert first["id"] == whale.pk and first["display_name"] == "Big Spender"
    assert (first["tier"], first["lifecycle"]) == ("whale", "active")
    spend = {key: value if key == "currency" else Decimal(str(value)) for key, value in first["spend"].items()}
    assert spend == {
        "subscriptions": 0,
        "tips": 400,
        "ppv": 200,
        "messages": 0,
        "total": 600,
        "currency": world.creator.currency,
    }
    assert first["ppv_buy_rate"] == 0.75 and first["tags"] == ["vip"]
    assert body["items"][1]["tier"] == "free" and body["items"][1]["ppv_buy_rate"] is None


def test_fan_list_filters(world):
    whale = _whale(world, username="whaley")
    FanTagFactory(fan=whale, name="vip")
    lapsed = FanFactory(creator=world.creator, username="lapsed", last_active_at=timezone.now() - timedelta(days=90))
    other = FanFactory(creator=world.other_creator, username="elsewhere")
    client = token_client(world.owner)

    def ids(query: str) -> set[int]:
        response = client.get(f"/api/v1/fans?{query}")
        assert response.status_code == 200, response.content
        return {item["id"] for item in response.json()["items"]}

    assert ids("tier=whale") == {whale.pk}
    assert ids("lifecycle=churned") == {lapsed.pk}
    assert ids("tag=VIP") == {whale.pk}
    assert ids("search=elsew") == {other.pk}
    assert ids(f"creator_id={world.other_creator.pk}") == {other.pk}
    segment = SegmentFactory(agency=world.agency, filters={"tiers": ["whale"]})
    assert ids(f"segment_id={segment.pk}") == {whale.pk}
    assert ids(f"segment_id={segment.pk}&tier=free") == set()


def test_fan_list_refuses_bad_filters_naming_them(world, other_world):
    client = token_client(world.owner)
    response = client.get("/api/v1/fans?tier=kraken")
    assert response.status_code == 422 and "tier" in error(response)["fields"]
    assert client.get(f"/api/v1/fans?creator_id={other_world.creator.pk}").status_code == 404
    foreign_segment = SegmentFactory(agency=other_world.agency)
    assert client.get(f"/api/v1/fans?segment_id={foreign_segment.pk}").status_code == 404
    response = client.get("/api/v1/fans?page_size=101")
    assert response.status_code == 422 and "page_size" in error(response)["fields"]


def test_chatter_sees_only_assigned_creators_fans(world):
    mine = FanFactory(creator=world.creator)
    theirs = FanFactory(creator=world.other_creator)
    client = token_client(world.chatter)
    assert [item["id"] for item in client.get("/api/v1/fans").json()["items"]] == [mine.pk]
    assert client.get(f"/api/v1/fans/{theirs.pk}").status_code == 404
    assert client.get(f"/api/v1/fans?creator_id={world.other_creator.pk}").status_code == 404


@pytest.mark.parametrize("extra", [0, 30])
def test_fan_list_query_count_is_constant(world, django_assert_num_queries, extra):
    for index in range(extra):
        fan = FanFactory(creator=world.creator if index % 2 else world.other_creator)
        FanTagFactory(fan=fan, name=f"tag{index % 3}")
    client = token_client(world.owner)
    # the token with its membership, its last-used stamp, the fan rules, the count, the page and
    # the page's tags (none for an empty page)
    with django_assert_num_queries(6 if extra else 5):
        assert client.get("/api/v1/fans").status_code == 200


def test_fan_detail_has_notes_tags_and_conversation(world):
    fan = _whale(world)
    FanTagFactory(fan=fan, name="vip")
    FanNote.objects.create(agency=world.agency, fan=fan, author=world.manager.user, text="Loves blue")
    body = token_client(world.viewer).get(f"/api/v1/fans/{fan.pk}").json()
    assert body["tier"] == "whale" and body["tags"] == ["vip"]
    assert body["notes"][0]["text"] == "Loves blue" and body["notes"][0]["author_email"] == world.manager.user.email
    assert body["conversation_id"] is None


def test_outsider_gets_404_for_a_fan(world, other_world):
    fan = FanFactory(creator=world.creator)
    client = token_client(other_world.owner)
    for method, url, data in [
        ("get", f"/api/v1/fans/{fan.pk}", None),
        ("patch", f"/api/v1/fans/{fan.pk}", {"tags": ["x"]}),
        ("post", f"/api/v1/fans/{fan.pk}/notes", {"text": "hi"}),
        ("get", f"/api/v1/fans/{fan.pk}/purchases", None),
    ]:
        response = getattr(client, method)(url, data=data, content_type="application/json")
        assert response.status_code == 404 and error(response)["code"] == "not_found", url
    assert not FanTag.objects.filter(fan=fan).exists() and not FanNote.objects.filter(fan=fan).exists()


def test_tags_replace_and_are_validated(world):
    fan = FanFactory(creator=world.creator)
    FanTagFactory(fan=fan, name="old")
    client = token_client(world.chatter)
    response = client.patch(
        f"/api/v1/fans/{fan.pk}", {"tags": ["VIP", " feet ", "vip"]}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["tags"] == ["feet", "vip"]
    assert sorted(FanTag.objects.filter(fan=fan).values_list("name", flat=True)) == ["feet", "vip"]
    response = client.patch(f"/api/v1/fans/{fan.pk}", {"tags": ["x" * 41]}, content_type="application/json")
    assert response.status_code == 422 and any(name.startswith("tags") for name in error(response)["fields"])
    assert client.patch(f"/api/v1/fans/{fan.pk}", {}, content_type="application/json").json()["tags"] == ["feet", "vip"]


def test_viewer_and_read_token_cannot_write(world):
    fan = FanFactory(creator=world.creator)
    viewer = token_client(world.viewer)
    response = viewer.patch(f"/api/v1/fans/{fan.pk}", {"tags": ["x"]}, content_type="application/json")
    assert response.status_code == 403 and error(response)["code"] == "permission_denied"
    assert (
        viewer.post(f"/api/v1/fans/{fan.pk}/notes", {"text": "hi"}, content_type="application/json").status_code == 403
    )
    read_only = token_client(world.owner, scope="read")
    assert read_only.get(f"/api/v1/fans/{fan.pk}").status_code == 200
    response = read_only.post(f"/api/v1/fans/{fan.pk}/notes", {"text": "hi"}, content_type="application/json")
    assert response.status_code == 403
    assert not FanTag.objects.filter(fan=fan).exists() and not FanNote.objects.filter(fan=fan).exists()


def test_notes_are_added_and_empty_ones_refused(world):
    fan = FanFactory(creator=world.creator)
    client = token_client(world.chatter)
    response = client.post(f"/api/v1/fans/{fan.pk}/notes", {"text": "Birthday in May"}, content_type="application/json")
    assert response.status_code == 201 and response.json()["author_email"] == world.chatter.user.email
    assert FanNote.objects.get(fan=fan).text == "Birthday in May"
    response = client.post(f"/api/v1/fans/{fan.pk}/notes", {"text": "   "}, content_type="application/json")
    assert response.status_code == 400 and "text" in error(response)["fields"]
    response = client.post(f"/api/v1/fans/{fan.pk}/notes", {"text": "x" * 2001}, content_type="application/json")
    assert response.status_code == 422 and "text" in error(response)["fields"]


def test_purchases_are_paged_newest_first(world):
    fan = FanFactory(creator=world.creator)
    now = timezone.now()
    for days in range(5):
        PurchaseFactory(fan=fan, kind="ppv", amount=Decimal(10 + days), purchased_at=now - timedelta(days=days))
    PurchaseFactory(fan=FanFactory(creator=world.creator))
    body = token_client(world.chatter).get(f"/api/v1/fans/{fan.pk}/purchases?page_size=2").json()
    assert body["count"] == 5
    assert [Decimal(str(item["amount"])) for item in body["items"]] == [10, 11]
    assert body["items"][0]["kind"] == "ppv"


def test_fan_rules_read_and_changed_by_owners_and_managers(world):
    _whale(world)  # 600 spent: a whale under the default rules
    body = token_client(world.chatter).get("/api/v1/fan-rules").json()
    assert (body["whale_min"], body["churned_days"], body["updated_at"]) == ("500.00", 30, None)
    manager = token_client(world.manager)
    response = manager.patch(
        "/api/v1/fan-rules", {"whale_min": "1000.00", "churned_days": 60}, content_type="application/json"
    )
    assert response.status_code == 200 and Decimal(str(response.json()["whale_min"])) == 1000
    assert response.json()["churned_days"] == 60 and response.json()["high_min"] == "100.00"
    assert manager.get("/api/v1/fans").json()["items"][0]["tier"] == "high"  # the badges follow the rules


def test_fan_rules_errors_and_roles(world):
    client = token_client(world.owner)
    response = client.patch("/api/v1/fan-rules", {"high_min": "900"}, content_type="application/json")
    assert response.status_code == 400 and "high_min" in error(response)["fields"]  # above whale_min (500)
    response = client.patch("/api/v1/fan-rules", {"new_days": 0}, content_type="application/json")
    assert response.status_code == 422 and "new_days" in error(response)["fields"]
    for membership in (world.chatter, world.viewer):
        assert (
            token_client(membership).patch("/api/v1/fan-rules", {}, content_type="application/json").status_code == 403
        )
    assert (
        token_client(world.owner, scope="read")
        .patch("/api/v1/fan-rules", {}, content_type="application/json")
        .status_code
        == 403
    )
    assert not FanRules.objects.filter(agency=world.agency).exists()
