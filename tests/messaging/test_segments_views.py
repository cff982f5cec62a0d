"""Segment pages: list with live counts, the form with one field per filter key, the live count
preview, delete; roles and outsiders."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from apps.messaging import services
from apps.messaging.models import Segment
from tests.conftest import login_client
from tests.messaging.factories import FanFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def _fans(world):
    for i, amount in enumerate(("900", "600", "5")):
        fan = FanFactory(creator=world.creator, username=f"fan{i}")
        fan.spent_tips = fan.total_spent = Decimal(amount)
        fan.save()


def test_list_shows_live_counts(world):
    _fans(world)
    SegmentFactory(agency=world.agency, name="Whales", filters={"tiers": ["whale"]})
    SegmentFactory(agency=world.agency, name="Everyone", filters={})
    body = login_client(world.viewer).get("/segments/").content.decode()
    assert "Whales" in body and "Everyone" in body
    assert ">2</a>" in body and ">3</a>" in body


def test_empty_state(world):
    body = login_client(world.owner).get("/segments/").content.decode()
    assert "No segments yet" in body and "Save as segment" in body


@pytest.mark.parametrize("segments", [2, 30])
def test_list_counts_every_segment_of_the_page_in_one_query(world, django_assert_max_num_queries, segments):
    for i in range(segments):
        SegmentFactory(agency=world.agency, name=f"S{i:02}", filters={"tiers": ["whale"]})
    client = login_client(world.owner)
    client.get("/segments/")
    with django_assert_max_num_queries(10):
        body = client.get("/segments/").content.decode()
    assert "S01" in body
    if segments > 25:
        assert "Page 1 of 2" in body and "S24" in body and "S25" not in body


def test_a_segment_whose_filters_no_longer_parse_is_shown_uncounted_beside_counted_ones(world):
    _fans(world)
    SegmentFactory(agency=world.agency, name="Whales", filters={"tiers": ["whale"]})
    SegmentFactory(agency=world.agency, name="Broken", filters={"moods": ["happy"]})
    response = login_client(world.owner).get("/segments/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Broken" in body and "filters need fixing" in body and ">2</a>" in body


def test_a_saved_segment_whose_filters_no_longer_parse_is_an_error_naming_the_filter_on_every_page(world):
    """Its page names the filter above the form; the fan list and the inbox filtered by it show
    that error on the segment field and nobody (not every fan, and no server error)."""
    _fans(world)
    fan = FanFactory(creator=world.creator, username="waiting_fan")
    services.message_receive(fan=fan, text="hey")
    broken = SegmentFactory(agency=world.agency, name="Broken", filters={"moods": ["happy"]})
    client = login_client(world.owner)
    page = client.get(f"/segments/{broken.pk}/")
    body = page.content.decode()
    assert page.status_code == 200 and 'role="alert"' in body
    assert "The saved filters of segment “Broken” can no longer be read" in body and "moods" in body
    for url in (f"/fans/?segment={broken.pk}", f"/inbox/?segment={broken.pk}"):
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 200, url
        assert "Segment: The saved filters of segment “Broken” can no longer be read" in body
        assert "fan0" not in body and "waiting_fan" not in body


def test_create_with_a_field_per_key(world):
    _fans(world)
    client = login_client(world.manager)
    form = client.get("/segments/new/").content.decode()
    for key in (
        "tiers",
        "lifecycles",
        "subscription_states",
        "platforms",
        "tags",
        "spent_min",
        "spent_max",
        "purchased_within_days",
        "no_purchase_for_days",
        "active_within_days",
        "inactive_for_days",
    ):
        assert f'name="{key}"' in form
    response = client.post(
        "/segments/new/", {"name": "Big", "tiers": ["whale", "high"], "spent_min": "550", "tags": "VIP, gym"}
    )
    assert response.status_code == 302
    segment = Segment.objects.get()
    assert segment.filters == {"tiers": ["whale", "high"], "tags": ["gym", "vip"], "spent_min": "550"}
    assert segment.created_by == world.manager.user


def test_save_as_segment_prefills_from_the_fan_list(world):
    body = login_client(world.owner).get("/segments/new/?tiers=whale&spent_min=100&tags=vip").content.decode()
    assert re.search(r'value="whale"[^>]*checked', body)
    assert not re.search(r'value="high"[^>]*checked', body)
    assert 'value="100"' in body and 'value="vip"' in body


def test_errors_are_per_field(world):
    client = login_client(world.owner)
    response = client.post(
        "/segments/new/", {"name": "", "spent_min": "50", "spent_max": "10", "active_within_days": "0"}
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "This field is required" in body
    assert "greater than or equal to 1" in body
    assert not Segment.objects.exists()
    response = client.post("/segments/new/", {"name": "Range", "spent_min": "50", "spent_max": "10"})
    assert response.status_code == 400 and "spent_min must not be above spent_max" in response.content.decode()


def test_duplicate_name_is_an_error_on_name(world):
    SegmentFactory(agency=world.agency, name="Whales")
    response = login_client(world.owner).post("/segments/new/", {"name": "whales"})
    assert response.status_code == 400 and "already used" in response.content.decode()
    assert Segment.objects.count() == 1


def test_preview_counts_live(world):
    _fans(world)
    body = login_client(world.owner).get("/segments/preview/?tiers=whale", HTTP_HX_REQUEST="true").content.decode()
    assert "<strong>2</strong> fans match now" in body and "<html" not in body
    body = login_client(world.owner).get("/segments/preview/?spent_min=x", HTTP_HX_REQUEST="true").content.decode()
    assert "Fix the filters" in body


def test_preview_names_the_filter_that_keeps_it_from_counting(world):
    client = login_client(world.owner)
    body = client.get("/segments/preview/?tiers=vip", HTTP_HX_REQUEST="true").content.decode()
    assert "Spend tier: Select a valid choice. vip is not one of the available choices." in body
    body = client.get("/segments/preview/?spent_min=50&spent_max=10", HTTP_HX_REQUEST="true").content.decode()
    assert "spent_min must not be above spent_max" in body and "fans match now" not in body


def test_preview_counts_only_what_the_member_sees(world):
    _fans(world)
    FanFactory(creator=world.other_creator)
    assert "<strong>3</strong>" in login_client(world.chatter).get("/segments/preview/").content.decode()
    assert "<strong>4</strong>" in login_client(world.owner).get("/segments/preview/").content.decode()


def test_edit_and_delete(world):
    segment = SegmentFactory(agency=world.agency, name="Old", filters={"tiers": ["whale"]})
    client = login_client(world.owner)
    assert 'value="Old"' in client.get(f"/segments/{segment.pk}/").content.decode()
    client.post(f"/segments/{segment.pk}/", {"name": "New", "lifecycles": ["at_risk"]})
    segment.refresh_from_db()
    assert (segment.name, segment.filters) == ("New", {"lifecycles": ["at_risk"]})
    assert client.post(f"/segments/{segment.pk}/delete/").status_code == 302
    assert not Segment.objects.exists()


def test_viewer_reads_but_cannot_write(world):
    segment = SegmentFactory(agency=world.agency, name="Kept")
    client = login_client(world.viewer)
    assert client.get(f"/segments/{segment.pk}/").status_code == 200
    assert client.get("/segments/new/").status_code == 403
    assert client.post("/segments/new/", {"name": "Nope"}).status_code == 403
    assert client.post(f"/segments/{segment.pk}/", {"name": "Changed"}).status_code == 403
    assert client.post(f"/segments/{segment.pk}/delete/").status_code == 403
    assert list(Segment.objects.values_list("name", flat=True)) == ["Kept"]


def test_chatter_creates_for_their_creator_only(world):
    client = login_client(world.chatter)
    response = client.post("/segments/new/", {"name": "Everyone"})
    assert response.status_code == 403
    response = client.post("/segments/new/", {"name": "Other", "creator": world.other_creator.pk})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert client.post("/segments/new/", {"name": "Mine", "creator": world.creator.pk}).status_code == 302
    assert Segment.objects.get().creator == world.creator


def test_outsider_gets_404(world, other_world):
    segment = SegmentFactory(agency=world.agency, name="Secret")
    client = login_client(other_world.owner)
    assert client.get(f"/segments/{segment.pk}/").status_code == 404
    assert client.post(f"/segments/{segment.pk}/delete/").status_code == 404
    assert "Secret" not in client.get("/segments/").content.decode()
    assert Segment.objects.filter(pk=segment.pk).exists()
