"""The fan list, a fan's page (notes, tags), the rules page: what each role sees and may do."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.core.pagination import CappedPaginator
from apps.messaging.models import Fan, FanNote, FanRules, FanTag
from tests.conftest import login_client
from tests.messaging.factories import ConversationFactory, FanFactory, FanTagFactory, PurchaseFactory, SegmentFactory

pytestmark = pytest.mark.django_db


def _spend(fan, amount: str):
    fan.spent_tips = Decimal(amount)
    fan.total_spent = Decimal(amount)
    fan.save()
    return fan


# --- The list ------------------------------------------------------------------------------------


def test_owner_sees_fans_highest_spend_first_with_badges(world):
    _spend(FanFactory(creator=world.creator, username="small_fry", display_name="Small"), "30")
    _spend(FanFactory(creator=world.other_creator, username="big_whale", display_name="Moby"), "900")
    response = login_client(world.owner).get("/fans/")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.index("big_whale") < body.index("small_fry")
    assert "Whale" in body and "Mid" in body
    assert "900.00" in body


def test_empty_state_offers_the_import(world):
    body = login_client(world.owner).get("/fans/").content.decode()
    assert "No fans yet" in body
    assert "/fans/import/" in body


def test_filters_narrow_the_list(world):
    whale = _spend(FanFactory(creator=world.creator, username="whale_one"), "800")
    _spend(FanFactory(creator=world.creator, username="low_one"), "5")
    FanTagFactory(fan=whale, name="vip")
    quiet = FanFactory(creator=world.other_creator, username="quiet_one")
    quiet.last_active_at = timezone.now() - timedelta(days=90)
    quiet.save()
    client = login_client(world.owner)

    def names(query: str) -> set[str]:
        body = client.get(f"/fans/?{query}").content.decode()
        return {name for name in ("whale_one", "low_one", "quiet_one") if name in body}

    assert names("tiers=whale") == {"whale_one"}
    assert names("tags=VIP") == {"whale_one"}
    assert names("spent_min=1&spent_max=10") == {"low_one"}
    assert names("inactive_for_days=30") == {"quiet_one"}
    assert names(f"creator={world.other_creator.pk}") == {"quiet_one"}
    assert names("q=whale") == {"whale_one"}
    assert names("lifecycles=churned") == {"quiet_one"}


def test_saved_segment_filter(world):
    _spend(FanFactory(creator=world.creator, username="whale_one"), "800")
    _spend(FanFactory(creator=world.creator, username="low_one"), "5")
    segment = SegmentFactory(agency=world.agency, filters={"tiers": ["low"]})
    body = login_client(world.owner).get(f"/fans/?segment={segment.pk}").content.decode()
    assert "low_one" in body and "whale_one" not in body


def test_bad_filter_values_are_shown_not_a_500(world):
    FanFactory(creator=world.creator, username="someone")
    response = login_client(world.owner).get("/fans/?spent_min=lots&tiers=emperor&spent_max=1&creator=999999")
    body = response.content.decode()
    assert response.status_code == 200
    assert "someone" not in body
    assert "Spent at least" in body and "emperor" in body


def test_min_above_max_is_named(world):
    body = login_client(world.owner).get("/fans/?spent_min=50&spent_max=10").content.decode()
    assert "spent_min must not be above spent_max" in body


def test_chatter_sees_only_assigned_creators_fans(world):
    FanFactory(creator=world.creator, username="assigned_fan")
    FanFactory(creator=world.other_creator, username="other_fan")
    client = login_client(world.chatter)
    body = client.get("/fans/").content.decode()
    assert "assigned_fan" in body and "other_fan" not in body
    # The other creator's id is not a choice: a form error, no data.
    body = client.get(f"/fans/?creator={world.other_creator.pk}").content.decode()
    assert "other_fan" not in body and "assigned_fan" not in body


def test_outsider_sees_none_of_our_fans(world, other_world):
    FanFactory(creator=world.creator, username="our_secret_fan")
    body = login_client(other_world.owner).get("/fans/").content.decode()
    assert "our_secret_fan" not in body
    segment = SegmentFactory(agency=world.agency)
    response = login_client(other_world.owner).get(f"/fans/?segment={segment.pk}")
    assert "our_secret_fan" not in response.content.decode()


def test_pagination_50_a_page(world):
    FanFactory.create_batch(51, creator=world.creator)
    client = login_client(world.owner)
    first = client.get("/fans/").content.decode()
    assert "Page 1 of 2" in first
    second = client.get("/fans/?page=2").content.decode()
    assert second.count('href="/fans/') >= 1 and "Page 2 of 2" in second


def test_a_list_past_ten_thousand_fans_says_more_than_and_pages_the_first_ten_thousand(world):
    now = timezone.now()
    Fan.objects.bulk_create(
        Fan(agency=world.agency, creator=world.creator, platform="onlyfans", platform_fan_id=f"bulk-{n}",
            username=f"bulk{n}", subscribed_since=now, last_active_at=now)
        for n in range(10_001)
    )  # fmt: skip
    client = login_client(world.owner)
    body = client.get("/fans/").content.decode()
    assert "More than 10,000 fans" in body and "export them all" in body
    assert "Page 1 of 200" in body
    assert "Page 200 of 200" in client.get("/fans/?page=201").content.decode()  # past the cap: the last page
    FanFactory.create_batch(2, creator=world.other_creator)
    exact = client.get(f"/fans/?creator={world.other_creator.pk}").content.decode()
    assert "2 fans match these filters" in exact and "More than" not in exact


def test_the_capped_paginator_counts_exactly_below_its_cap(world):
    FanFactory.create_batch(3, creator=world.creator)
    below = CappedPaginator(Fan.objects.all(), 2, cap=3)
    assert (below.count, below.capped, below.num_pages) == (3, False, 2)
    FanFactory(creator=world.creator)
    above = CappedPaginator(Fan.objects.all(), 2, cap=3)
    assert (above.count, above.capped, above.num_pages) == (3, True, 2)


@pytest.mark.parametrize("extra", [0, 60])
def test_list_query_count_is_constant(world, django_assert_max_num_queries, extra):
    for fan in FanFactory.create_batch(5 + extra, creator=world.creator):
        FanTagFactory(fan=fan, name="vip")
    client = login_client(world.owner)
    client.get("/fans/")  # warm the session
    with django_assert_max_num_queries(11):
        response = client.get("/fans/?tiers=free&tags=vip")
    assert response.status_code == 200


def test_htmx_answers_the_results_fragment(world):
    FanFactory(creator=world.creator, username="frag_fan")
    body = login_client(world.owner).get("/fans/", HTTP_HX_REQUEST="true").content.decode()
    assert "frag_fan" in body and "<html" not in body


def test_fan_text_is_escaped(world):
    FanFactory(creator=world.creator, username="x", display_name="<script>alert(1)</script>")
    body = login_client(world.owner).get("/fans/").content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


# --- A fan's page ---------------------------------------------------------------------------------


def test_fan_detail_shows_profile_spend_purchases_and_conversation(world):
    fan = FanFactory(creator=world.creator, username="detail_fan", ppv_offered=4, ppv_bought=1)
    _spend(fan, "120")
    for _ in range(25):
        PurchaseFactory(fan=fan, amount=Decimal("4.80"))
    conversation = ConversationFactory(fan=fan)
    client = login_client(world.owner)
    body = client.get(f"/fans/{fan.pk}/").content.decode()
    assert "detail_fan" in body and "High" in body
    assert "25%" in body  # PPV buy rate
    assert f"/inbox/c/{conversation.pk}/" in body
    assert "Page 1 of 2" in body and body.count("4.80 USD") == 20
    page2 = client.get(f"/fans/{fan.pk}/?purchases=2", HTTP_HX_REQUEST="true").content.decode()
    assert page2.count("4.80 USD") == 5 and "<html" not in page2


def test_fan_detail_of_another_agency_or_unassigned_creator_is_404(world, other_world):
    fan = FanFactory(creator=world.other_creator)
    assert login_client(other_world.owner).get(f"/fans/{fan.pk}/").status_code == 404
    assert login_client(world.chatter).get(f"/fans/{fan.pk}/").status_code == 404


def test_note_and_tags_by_chatter(world):
    fan = FanFactory(creator=world.creator)
    client = login_client(world.chatter)
    response = client.post(f"/fans/{fan.pk}/notes/", {"text": "Likes gym content"})
    assert response.status_code == 302
    assert FanNote.objects.get(fan=fan).text == "Likes gym content"
    client.post(f"/fans/{fan.pk}/tags/", {"tags": "VIP, gym"})
    assert sorted(FanTag.objects.filter(fan=fan).values_list("name", flat=True)) == ["gym", "vip"]
    assert "Likes gym content" in client.get(f"/fans/{fan.pk}/").content.decode()


def test_empty_note_is_a_field_error(world):
    fan = FanFactory(creator=world.creator)
    response = login_client(world.owner).post(f"/fans/{fan.pk}/notes/", {"text": "   "})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not FanNote.objects.exists()


def test_viewer_cannot_write_notes_or_tags(world):
    fan = FanFactory(creator=world.creator)
    client = login_client(world.viewer)
    assert client.post(f"/fans/{fan.pk}/notes/", {"text": "hi"}).status_code == 403
    assert client.post(f"/fans/{fan.pk}/tags/", {"tags": "vip"}).status_code == 403
    assert not FanNote.objects.exists() and not FanTag.objects.exists()
    assert "Add note" not in client.get(f"/fans/{fan.pk}/").content.decode()


# --- Rules ----------------------------------------------------------------------------------------

RULES = {
    "low_min": "1",
    "mid_min": "50",
    "high_min": "200",
    "whale_min": "1000",
    "new_days": "5",
    "at_risk_days": "10",
    "churned_days": "40",
}


def test_manager_edits_rules_and_badges_follow(world):
    _spend(FanFactory(creator=world.creator, username="was_whale"), "600")
    client = login_client(world.manager)
    assert "Whale" in client.get("/fans/?tiers=whale").content.decode()
    response = client.post("/fans/rules/", RULES)
    assert response.status_code == 302
    rules = FanRules.objects.get(agency=world.agency)
    assert (rules.whale_min, rules.churned_days) == (Decimal("1000.00"), 40)
    assert "was_whale" in client.get("/fans/?tiers=high").content.decode()


@pytest.mark.parametrize(
    ("change", "message"),
    [({"mid_min": "300"}, "must be above"), ({"churned_days": "10"}, "must be longer"), ({"low_min": "0"}, "")],
)
def test_rules_out_of_order_are_form_errors(world, change, message):
    response = login_client(world.owner).post("/fans/rules/", {**RULES, **change})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'class="field has-error"' in response.content.decode()
    assert not FanRules.objects.exists()


@pytest.mark.parametrize("role", ["chatter", "viewer"])
def test_chatter_and_viewer_read_rules_but_cannot_change_them(world, role):
    client = login_client(world.member(role))
    body = client.get("/fans/rules/").content.decode()
    assert "Churned" in body and "owners and managers change them" in body
    assert client.post("/fans/rules/", RULES).status_code == 403
    assert not FanRules.objects.exists()
