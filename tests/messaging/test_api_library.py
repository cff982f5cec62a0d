"""API: saved segments (live counts, their fans) and message templates (per-fan rendering)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.messaging.models import MessageTemplate, Segment
from tests.accounts.factories import CreatorFactory
from tests.messaging.api_helpers import error, token_client
from tests.messaging.factories import FanFactory, SegmentFactory, TemplateFactory

JSON = "application/json"


def _fans(world):
    whales = [FanFactory(creator=world.creator, total_spent=Decimal(900), spent_tips=Decimal(900)) for _ in range(2)]
    FanFactory(creator=world.other_creator, total_spent=Decimal(900), spent_tips=Decimal(900))
    FanFactory(creator=world.creator)
    return whales


def test_segments_are_listed_with_live_counts(world):
    _fans(world)
    SegmentFactory(agency=world.agency, name="Whales", filters={"tiers": ["whale"]})
    SegmentFactory(agency=world.agency, name="Star whales", creator=world.creator, filters={"tiers": ["whale"]})
    SegmentFactory(agency=world.agency, name="Everyone", filters={})
    owner = token_client(world.owner).get("/api/v1/segments").json()
    assert {item["name"]: item["fan_count"] for item in owner["items"]} == {
        "Everyone": 4,
        "Star whales": 2,
        "Whales": 3,
    }
    chatter = token_client(world.chatter).get("/api/v1/segments").json()
    assert {item["name"]: item["fan_count"] for item in chatter["items"]} == {
        "Everyone": 3,
        "Star whales": 2,
        "Whales": 2,
    }


@pytest.mark.parametrize("extra", [0, 12])
def test_segment_list_counts_in_one_query_whatever_the_page(world, django_assert_num_queries, extra):
    _fans(world)
    for index in range(extra):
        SegmentFactory(agency=world.agency, filters={"tiers": ["whale"], "tags": [f"t{index}"]})
    SegmentFactory(agency=world.agency, filters={"lifecycles": ["active"]})
    client = token_client(world.owner)
    # token, its stamp, count, page, fan rules, one aggregate for every count on the page
    with django_assert_num_queries(6):
        assert client.get("/api/v1/segments").status_code == 200


def test_segment_count_and_fans(world, django_assert_num_queries):
    whales = _fans(world)
    segment = SegmentFactory(agency=world.agency, creator=world.creator, filters={"tiers": ["whale"]})
    client = token_client(world.owner)
    with django_assert_num_queries(5):  # token, stamp, segment, rules, one COUNT
        assert client.get(f"/api/v1/segments/{segment.pk}/count").json() == {"fan_count": 2}
    fans = client.get(f"/api/v1/segments/{segment.pk}/fans").json()
    assert fans["count"] == 2 and {item["id"] for item in fans["items"]} == {fan.pk for fan in whales}
    assert all(item["tier"] == "whale" for item in fans["items"])


def test_segment_create_update_delete(world):
    client = token_client(world.manager)
    response = client.post(
        "/api/v1/segments",
        {"name": "Big", "filters": {"spent_min": "100"}, "creator_id": world.creator.pk},
        content_type=JSON,
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["creator_id"] == world.creator.pk and created["fan_count"] == 0
    segment_id = created["id"]
    response = client.patch(f"/api/v1/segments/{segment_id}", {"creator_id": None, "name": "Bigger"}, content_type=JSON)
    assert response.status_code == 200
    assert response.json()["creator_id"] is None and response.json()["name"] == "Bigger"
    assert response.json()["filters"] == created["filters"]
    assert client.delete(f"/api/v1/segments/{segment_id}").status_code == 204
    assert not Segment.objects.filter(pk=segment_id).exists()


def test_segment_errors_name_the_field(world, other_world):
    client = token_client(world.owner)
    SegmentFactory(agency=world.agency, name="Taken")
    response = client.post("/api/v1/segments", {"name": "taken", "filters": {}}, content_type=JSON)
    assert response.status_code == 409 and "name" in error(response)["fields"]
    response = client.post("/api/v1/segments", {"name": "Typo", "filters": {"teirs": ["whale"]}}, content_type=JSON)
    assert (
        response.status_code == 400 and "filters" in error(response)["fields"] and "teirs" in error(response)["message"]
    )
    response = client.post("/api/v1/segments", {"filters": {}}, content_type=JSON)
    assert response.status_code == 422 and "name" in error(response)["fields"]
    response = client.post(
        "/api/v1/segments", {"name": "Theirs", "creator_id": other_world.creator.pk}, content_type=JSON
    )
    assert response.status_code == 404
    assert list(Segment.objects.filter(agency=world.agency).values_list("name", flat=True)) == ["Taken"]


def test_filters_that_would_read_as_another_audience_are_refused_naming_the_filter(world):
    """Values pydantic would take for something else (true for 1 day, blank tags for no tag
    filter: every fan) and a null for the filters (which kept the old ones) are 400s."""
    client = token_client(world.owner)
    for filters, key in (({"active_within_days": True}, "active_within_days"), ({"tags": [" "]}, "tags")):
        response = client.post("/api/v1/segments", {"name": "Odd", "filters": filters}, content_type=JSON)
        assert response.status_code == 400 and error(response)["code"] == "invalid"
        assert f"“{key}”" in error(response)["message"] and "filters" in error(response)["fields"]
    assert not Segment.objects.exists()
    segment = SegmentFactory(agency=world.agency, filters={"tiers": ["whale"]})
    response = client.patch(f"/api/v1/segments/{segment.pk}", {"filters": None}, content_type=JSON)
    assert response.status_code == 400 and "leave filters out to keep them" in error(response)["message"]
    response = client.patch(f"/api/v1/segments/{segment.pk}", {"filters": {"tags": [" "]}}, content_type=JSON)
    assert response.status_code == 400 and "“tags”" in error(response)["message"]
    segment.refresh_from_db()
    assert segment.filters == {"tiers": ["whale"]}


@pytest.mark.parametrize("stored", [{"tiers": ["vip"]}, {"moods": ["happy"]}, ["tiers"]])
def test_a_saved_segment_whose_filters_no_longer_parse_is_listed_but_never_used_as_an_audience(world, stored):
    """Saved before a key changed meaning, or written around the API: the list and the segment
    still answer (count null, the filter named) so a client can fix it; its count and every list
    it would narrow answer 409 naming the filter, never every fan or none in silence."""
    _fans(world)
    SegmentFactory(agency=world.agency, name="Whales", filters={"tiers": ["whale"]})
    broken = SegmentFactory(agency=world.agency, name="Broken", filters=stored)
    key = "filters" if isinstance(stored, list) else next(iter(stored))
    client = token_client(world.owner)
    listed = {item["name"]: item for item in client.get("/api/v1/segments").json()["items"]}
    assert listed["Whales"]["fan_count"] == 3 and listed["Whales"]["filters_error"] is None
    assert listed["Broken"]["fan_count"] is None and key in listed["Broken"]["filters_error"]
    detail = client.get(f"/api/v1/segments/{broken.pk}")
    assert detail.status_code == 200 and detail.json()["filters_error"] == listed["Broken"]["filters_error"]
    for url in (
        f"/api/v1/segments/{broken.pk}/count",
        f"/api/v1/segments/{broken.pk}/fans",
        f"/api/v1/fans?segment_id={broken.pk}",
        f"/api/v1/conversations?segment_id={broken.pk}",
    ):
        response = client.get(url)
        assert response.status_code == 409, url
        assert error(response)["code"] == "segment_filters_invalid"
        assert "“Broken”" in error(response)["message"] and key in error(response)["message"]
    fixed = client.patch(f"/api/v1/segments/{broken.pk}", {"filters": {"tiers": ["whale"]}}, content_type=JSON)
    assert fixed.status_code == 200 and fixed.json()["fan_count"] == 3 and fixed.json()["filters_error"] is None
    assert client.get(f"/api/v1/segments/{broken.pk}/count").json() == {"fan_count": 3}


def test_segment_roles_and_outsiders(world, other_world):
    segment = SegmentFactory(agency=world.agency, filters={})
    viewer = token_client(world.viewer)
    assert viewer.get(f"/api/v1/segments/{segment.pk}").status_code == 200
    assert viewer.post("/api/v1/segments", {"name": "Mine"}, content_type=JSON).status_code == 403
    assert viewer.delete(f"/api/v1/segments/{segment.pk}").status_code == 403
    # A chatter may save a segment for their creator but not one spanning all creators.
    chatter = token_client(world.chatter)
    assert chatter.post("/api/v1/segments", {"name": "All"}, content_type=JSON).status_code == 403
    response = chatter.post("/api/v1/segments", {"name": "Mine", "creator_id": world.creator.pk}, content_type=JSON)
    assert response.status_code == 201
    assert chatter.get(f"/api/v1/segments/{segment.pk}/count").status_code == 200
    outsider = token_client(other_world.owner)
    for method in ("get", "patch", "delete"):
        response = getattr(outsider, method)(f"/api/v1/segments/{segment.pk}", {"name": "x"}, content_type=JSON)
        assert response.status_code == 404 and error(response)["code"] == "not_found"
    assert outsider.get(f"/api/v1/segments/{segment.pk}/fans").status_code == 404
    assert Segment.objects.filter(pk=segment.pk).exists()
    read_only = token_client(world.owner, scope="read")
    assert read_only.get("/api/v1/segments").status_code == 200
    assert read_only.post("/api/v1/segments", {"name": "R"}, content_type=JSON).status_code == 403


def test_template_crud_and_rendering(world):
    client = token_client(world.manager)
    response = client.post(
        "/api/v1/templates",
        {"name": "Welcome", "text": "Hi {fan.first_name|babe}, it's {creator.first_name}", "category": "welcome"},
        content_type=JSON,
    )
    assert response.status_code == 201, response.content
    template_id = response.json()["id"]
    named = FanFactory(creator=world.creator, display_name="Marco Polo")
    anonymous = FanFactory(creator=world.creator, display_name="")
    first = world.creator.display_name.split()[0]
    body = client.get(f"/api/v1/templates/{template_id}/render?fan_id={named.pk}").json()
    assert body["text"] == f"Hi Marco, it's {first}" and body["fallbacks_used"] == []
    body = client.get(f"/api/v1/templates/{template_id}/render?fan_id={anonymous.pk}").json()
    assert body["text"] == f"Hi babe, it's {first}" and body["fallbacks_used"] == ["fan.first_name"]
    score = body["personalization"]
    assert 0 <= score["score"] <= 100 and sum(score["factors"].values()) == score["score"]
    named_score = client.get(f"/api/v1/templates/{template_id}/render?fan_id={named.pk}").json()["personalization"]
    assert named_score["score"] > score["score"]  # the fan's own name beats the fallback
    assert any("name" in suggestion.lower() for suggestion in score["suggestions"])
    response = client.patch(f"/api/v1/templates/{template_id}", {"category": "thank_you"}, content_type=JSON)
    assert response.status_code == 200 and response.json()["category"] == "thank_you"
    assert response.json()["text"].startswith("Hi {fan.first_name|babe}")
    assert client.get("/api/v1/templates?category=thank_you").json()["count"] == 1
    assert client.get("/api/v1/templates?category=welcome").json()["count"] == 0
    assert client.delete(f"/api/v1/templates/{template_id}").status_code == 204
    assert not MessageTemplate.objects.filter(pk=template_id).exists()


def test_template_errors_name_the_field(world, other_world):
    client = token_client(world.owner)
    response = client.post("/api/v1/templates", {"name": "Bad", "text": "Hi {fan.shoe_size}"}, content_type=JSON)
    assert response.status_code == 400 and "text" in error(response)["fields"]
    assert "fan.shoe_size" in error(response)["message"]
    response = client.post("/api/v1/templates", {"name": "Bad", "text": "Hi", "category": "spam"}, content_type=JSON)
    assert response.status_code == 422 and "category" in error(response)["fields"]
    TemplateFactory(agency=world.agency, name="Taken")
    response = client.post("/api/v1/templates", {"name": "Taken", "text": "Hi"}, content_type=JSON)
    assert response.status_code == 409 and "name" in error(response)["fields"]
    template = TemplateFactory(agency=world.agency)
    foreign_fan = FanFactory(creator=other_world.creator)
    assert client.get(f"/api/v1/templates/{template.pk}/render?fan_id={foreign_fan.pk}").status_code == 404
    response = client.get(f"/api/v1/templates/{template.pk}/render")
    assert response.status_code == 400 and "fan_id" in error(response)["fields"]
    response = client.get(f"/api/v1/templates/{template.pk}/render?fan_id=0")
    assert response.status_code == 422 and "fan_id" in error(response)["fields"]


def test_template_visibility_roles_and_outsiders(world, other_world):
    shared = TemplateFactory(agency=world.agency, name="Shared")
    mine = TemplateFactory(agency=world.agency, name="Star only", creator=world.creator)
    hidden = TemplateFactory(agency=world.agency, name="Nova only", creator=world.other_creator)
    chatter = token_client(world.chatter)
    names = {item["name"] for item in chatter.get("/api/v1/templates").json()["items"]}
    assert names == {"Shared", "Star only"}
    assert chatter.get(f"/api/v1/templates/{hidden.pk}").status_code == 404
    assert chatter.patch(f"/api/v1/templates/{shared.pk}", {"name": "Mine now"}, content_type=JSON).status_code == 403
    viewer = token_client(world.viewer)
    assert viewer.get(f"/api/v1/templates/{mine.pk}").status_code == 200
    assert viewer.post("/api/v1/templates", {"name": "V", "text": "Hi"}, content_type=JSON).status_code == 403
    outsider = token_client(other_world.owner)
    for method in ("get", "patch", "delete"):
        response = getattr(outsider, method)(f"/api/v1/templates/{shared.pk}", {"name": "x"}, content_type=JSON)
        assert response.status_code == 404
    assert MessageTemplate.objects.get(pk=shared.pk).name == "Shared"
    extra_creator = CreatorFactory(agency=world.agency)
    usable = token_client(world.owner).get(f"/api/v1/templates?creator_id={extra_creator.pk}").json()
    assert {item["name"] for item in usable["items"]} == {"Shared"}
