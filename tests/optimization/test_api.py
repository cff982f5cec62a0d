"""API: a creator's price, times and anomalies, recommendations with accept and dismiss, the track
record, stored anomalies, settings and offers; who may read and change them, the field named in
every refusal, and another agency's objects answering 404."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.optimization.models import Anomaly, Offer, OptimizationSettings, Recommendation
from tests.accounts.factories import CreatorFactory
from tests.messaging.api_helpers import error, token_client
from tests.optimization.factories import add_daily, add_hourly, add_offers, add_posts

pytestmark = pytest.mark.django_db

JSON = "application/json"
BASE = "/api/v1/optimization"


def _recommendation(creator, **fields):
    values = {
        "kind": "price",
        "headline": "Raise PPV to $15: +12% expected revenue, 80% confidence",
        "payload": {"price": 15.0},
        "expected_value": 3.0,
        "confidence": 0.8,
        "run_date": timezone.now().date(),
    }
    return Recommendation.objects.create(agency_id=creator.agency_id, creator=creator, **(values | fields))


def _anomaly(creator, **fields):
    values = {
        "metric": "revenue_tips",
        "at": timezone.now().replace(hour=0, minute=0, second=0, microsecond=0),
        "value": 400.0,
        "expected_low": 30.0,
        "expected_high": 60.0,
        "score": 0.95,
        "severity": "high",
    }
    return Anomaly.objects.create(agency_id=creator.agency_id, creator=creator, **(values | fields))


# --- Computed answers -------------------------------------------------------------------------------


def test_without_data_every_answer_says_not_enough_data(world):
    client = token_client(world.owner, "read")
    body = client.get(f"{BASE}/creators/{world.creator.pk}/comprehensive").json()
    assert body["pricing"]["status"] == "not_enough_data"
    assert body["pricing"]["needed"] > 0 and body["pricing"]["price"] is None
    assert "need" in body["pricing"]["message"].lower()
    assert body["post_timing"]["status"] == "not_enough_data" and body["post_timing"]["needed"] > 0
    assert body["anomalies"] == []
    pricing = client.get(f"{BASE}/creators/{world.creator.pk}/pricing").json()
    assert pricing["status"] == "not_enough_data" and pricing["price"] is None


def test_comprehensive_answers_price_times_in_the_creators_zone_and_anomalies(world):
    creator = CreatorFactory(agency=world.agency, display_name="Kathmandu", timezone="Asia/Kathmandu")
    add_offers(creator, rounds=4)
    add_offers(world.creator, rounds=2, seed=4)
    add_posts(creator, best_hour=21)
    add_hourly(creator, best_hour=20)
    add_daily(creator, spike_days_ago=4, spike=10)

    response = token_client(world.viewer, "read").get(
        f"{BASE}/creators/{creator.pk}/comprehensive", {"strategy": "revenue_max", "risk": "conservative"}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["strategy"], body["risk"], body["sensitivity"]) == ("revenue_max", "conservative", "medium")
    assert body["pricing"]["status"] == "recommendation" and body["pricing"]["price"] > 0
    assert body["pricing"]["curve"] and 0 <= body["pricing"]["confidence"] <= 1
    post = body["post_timing"]
    assert post["status"] == "advice" and post["timezone"] == "Asia/Kathmandu"
    assert {slot["hour"] for slot in post["slots"]} == {21}
    assert len(post["heatmap"]) == 7 and len(post["heatmap"][0]) == 24
    assert body["message_timing"]["slots"][0]["hour"] == 20
    assert any(a["metric"] == "revenue_tips" and a["direction"] == "above" for a in body["anomalies"])

    timing = token_client(world.owner, "read").get(f"{BASE}/creators/{creator.pk}/timing").json()
    assert timing["timezone"] == "Asia/Kathmandu" and timing["post_timing"]["slots"][0]["hour"] == 21
    anomalies = token_client(world.owner, "read").get(f"{BASE}/creators/{creator.pk}/anomalies").json()
    assert anomalies["days"] == 30 and anomalies["anomalies"]


@pytest.mark.parametrize("name", ["strategy", "risk", "sensitivity"])
def test_an_unknown_choice_is_a_422_naming_it(world, name):
    response = token_client(world.owner, "read").get(
        f"{BASE}/creators/{world.creator.pk}/comprehensive", {name: "yolo"}
    )
    assert response.status_code == 422
    assert name in error(response)["fields"]


@pytest.mark.parametrize("suffix", ["comprehensive", "pricing", "timing", "anomalies"])
def test_another_agencys_creator_is_not_found(world, other_world, suffix):
    response = token_client(world.owner, "read").get(f"{BASE}/creators/{other_world.creator.pk}/{suffix}")
    assert response.status_code == 404


def test_a_chatter_sees_only_their_creator(world):
    client = token_client(world.chatter, "read")
    assert client.get(f"{BASE}/creators/{world.creator.pk}/pricing").status_code == 200
    assert client.get(f"{BASE}/creators/{world.other_creator.pk}/pricing").status_code == 404
    _recommendation(world.creator)
    _recommendation(world.other_creator)
    items = client.get(f"{BASE}/recommendations").json()["items"]
    assert {item["creator_id"] for item in items} == {world.creator.pk}


# --- Recommendations ---------------------------------------------------------------------------------------


def test_recommendations_are_listed_filtered_and_scoped(world, other_world, django_assert_max_num_queries):
    for creator in (world.creator, world.other_creator):
        _recommendation(creator)
        _recommendation(creator, kind="post_time", status="accepted", outcome="pending", payload={"slots": []})
    _recommendation(other_world.creator)
    client = token_client(world.viewer, "read")

    with django_assert_max_num_queries(8):
        body = client.get(f"{BASE}/recommendations").json()
    assert body["count"] == 4
    assert {item["creator_name"] for item in body["items"]} == {"Velvet Star", "Velvet Nova"}
    open_prices = client.get(f"{BASE}/recommendations", {"status": "open", "kind": "price"}).json()
    assert open_prices["count"] == 2
    mine = client.get(f"{BASE}/recommendations", {"creator_id": world.creator.pk}).json()
    assert mine["count"] == 2
    assert client.get(f"{BASE}/recommendations", {"creator_id": other_world.creator.pk}).status_code == 404
    assert client.get(f"{BASE}/recommendations", {"status": "maybe"}).status_code == 422


def test_accept_and_dismiss_decide_once(world):
    accept_me, dismiss_me = _recommendation(world.creator), _recommendation(world.other_creator)
    client = token_client(world.manager, "write")

    accepted = client.post(f"{BASE}/recommendations/{accept_me.pk}/accept")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "accepted" and accepted.json()["outcome"] == "pending"
    again = client.post(f"{BASE}/recommendations/{accept_me.pk}/accept")
    assert again.status_code == 409 and "only open" in error(again)["message"]

    dismissed = client.post(
        f"{BASE}/recommendations/{dismiss_me.pk}/dismiss", {"reason": "Not this month"}, content_type=JSON
    )
    assert dismissed.json()["status"] == "dismissed" and dismissed.json()["dismiss_reason"] == "Not this month"
    long = client.post(f"{BASE}/recommendations/{dismiss_me.pk}/dismiss", {"reason": "x" * 201}, content_type=JSON)
    assert long.status_code == 422 and "reason" in error(long)["fields"]


@pytest.mark.parametrize(("role", "scope"), [("viewer", "read"), ("chatter", "write"), ("owner", "read")])
def test_viewers_chatters_and_read_tokens_cannot_decide(world, role, scope):
    recommendation = _recommendation(world.creator)
    client = token_client(world.member(role), scope)
    assert client.post(f"{BASE}/recommendations/{recommendation.pk}/accept").status_code == 403
    assert client.post(f"{BASE}/recommendations/{recommendation.pk}/dismiss", {}, content_type=JSON).status_code == 403
    recommendation.refresh_from_db()
    assert recommendation.status == "open"


def test_another_agencys_recommendation_and_anomaly_are_not_found(world, other_world):
    recommendation, anomaly = _recommendation(other_world.creator), _anomaly(other_world.creator)
    client = token_client(world.owner, "admin")
    assert client.post(f"{BASE}/recommendations/{recommendation.pk}/accept").status_code == 404
    assert client.post(f"{BASE}/recommendations/{recommendation.pk}/dismiss", {}, content_type=JSON).status_code == 404
    assert client.post(f"{BASE}/anomalies/{anomaly.pk}/acknowledge").status_code == 404
    empty = token_client(world.owner, "write").post(
        f"{BASE}/recommendations/{_recommendation(world.creator).pk}/dismiss", content_type=JSON
    )
    assert empty.status_code == 200 and empty.json()["dismiss_reason"] == ""  # no body: no reason
    recommendation.refresh_from_db()
    assert recommendation.status == "open"


def test_the_track_record_has_a_row_per_kind(world):
    _recommendation(world.creator, status="accepted", outcome="met", outcome_value=3.3)
    _recommendation(world.creator, status="accepted", outcome="missed", outcome_value=1.5)
    _recommendation(world.other_creator, status="dismissed")
    rows = {row["kind"]: row for row in token_client(world.viewer, "read").get(f"{BASE}/track-record").json()}
    assert set(rows) == {"price", "post_time", "message_time", "anomaly"}
    price = rows["price"]
    assert (price["accepted"], price["dismissed"], price["measured"], price["met"]) == (2, 1, 2, 1)
    assert price["hit_rate"] == pytest.approx(0.5)
    assert price["mean_ratio"] == pytest.approx((1.1 + 0.5) / 2)
    assert rows["post_time"]["hit_rate"] is None
    # A chatter's track record counts only their assigned creator (world.creator), not the other's.
    mine = {row["kind"]: row for row in token_client(world.chatter, "read").get(f"{BASE}/track-record").json()}
    assert (mine["price"]["accepted"], mine["price"]["dismissed"]) == (2, 0)


# --- Anomalies ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "scope"), [("viewer", "read"), ("owner", "read")])
def test_viewers_and_read_tokens_cannot_acknowledge(world, role, scope):
    anomaly = _anomaly(world.creator)
    assert token_client(world.member(role), scope).post(f"{BASE}/anomalies/{anomaly.pk}/acknowledge").status_code == 403
    anomaly.refresh_from_db()
    assert anomaly.status == "open"


def test_stored_anomalies_are_listed_and_acknowledged(world):
    anomaly = _anomaly(world.creator)
    client = token_client(world.manager, "write")
    body = client.get(f"{BASE}/anomalies").json()
    assert body["count"] == 1 and body["items"][0]["direction"] == "above"
    assert body["items"][0]["label"] == "Tips"
    acknowledged = client.post(f"{BASE}/anomalies/{anomaly.pk}/acknowledge")
    assert acknowledged.status_code == 200 and acknowledged.json()["status"] == "acknowledged"
    assert client.get(f"{BASE}/anomalies", {"status": "open"}).json()["count"] == 0


# --- Settings ---------------------------------------------------------------------------------------------------


def test_settings_default_agency_and_creator_override(world):
    client = token_client(world.manager, "write")
    default = client.get(f"{BASE}/settings").json()
    assert default["source"] == "default" and default["strategy"] == "balanced"

    body = {"strategy": "revenue_max", "risk": "aggressive", "sensitivity": "high", "explore_prices": True}
    assert client.put(f"{BASE}/settings", body, content_type=JSON).json()["source"] == "agency"
    override = body | {"creator_id": world.creator.pk, "strategy": "conversion_max"}
    assert client.put(f"{BASE}/settings", override, content_type=JSON).status_code == 200

    assert client.get(f"{BASE}/settings", {"creator_id": world.creator.pk}).json()["strategy"] == "conversion_max"
    inherited = client.get(f"{BASE}/settings", {"creator_id": world.other_creator.pk}).json()
    assert (inherited["source"], inherited["strategy"]) == ("agency", "revenue_max")
    assert OptimizationSettings.objects.filter(agency=world.agency).count() == 2


def test_a_put_that_leaves_out_explore_prices_keeps_the_stored_choice(world):
    client = token_client(world.manager, "write")
    body = {"strategy": "revenue_max", "risk": "aggressive", "sensitivity": "high"}
    assert client.put(f"{BASE}/settings", body | {"explore_prices": True}, content_type=JSON).status_code == 200
    changed = client.put(f"{BASE}/settings", body | {"strategy": "conversion_max"}, content_type=JSON)
    assert changed.status_code == 200
    assert (changed.json()["strategy"], changed.json()["explore_prices"]) == ("conversion_max", True)
    assert client.get(f"{BASE}/settings").json()["explore_prices"] is True
    new_override = client.put(f"{BASE}/settings", body | {"creator_id": world.creator.pk}, content_type=JSON)
    assert new_override.json()["explore_prices"] is False  # a new setting starts with exploring off
    off = client.put(f"{BASE}/settings", body | {"explore_prices": False}, content_type=JSON)
    assert off.json()["explore_prices"] is False


def test_settings_refusals(world, other_world):
    body = {"strategy": "revenue_max", "risk": "aggressive", "sensitivity": "high", "explore_prices": False}
    bad = token_client(world.owner, "write").put(f"{BASE}/settings", body | {"risk": "yolo"}, content_type=JSON)
    assert bad.status_code == 422 and "risk" in error(bad)["fields"]
    assert token_client(world.viewer, "read").put(f"{BASE}/settings", body, content_type=JSON).status_code == 403
    foreign = body | {"creator_id": other_world.creator.pk}
    assert token_client(world.owner, "write").put(f"{BASE}/settings", foreign, content_type=JSON).status_code == 404
    assert not OptimizationSettings.objects.exists()


# --- Offers ------------------------------------------------------------------------------------------------------


def test_offers_are_recorded_and_listed(world, other_world, django_assert_max_num_queries):
    add_offers(other_world.creator, rounds=1)
    client = token_client(world.manager, "write")
    response = client.post(
        f"{BASE}/offers", {"creator_id": world.creator.pk, "price": "14.50", "recipients": 200, "unlocks": 30},
        content_type=JSON,
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json()["revenue"] == "435.00" and response.json()["unlock_rate"] == pytest.approx(0.15)
    add_offers(world.creator, rounds=2)
    with django_assert_max_num_queries(8):
        body = client.get(f"{BASE}/offers").json()
    assert body["count"] == 11
    assert {item["creator_id"] for item in body["items"]} == {world.creator.pk}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price": "NaN"}, "price"),
        ({"price": "Infinity"}, "price"),
        ({"price": -3}, "price"),
        ({"price": 0}, "price"),
        ({"price": 5000}, "price"),
        ({"unlocks": 201}, "unlocks"),
        ({"recipients": 0}, "recipients"),
        ({"currency": "US"}, "currency"),
    ],
)
def test_a_bad_offer_is_a_422_naming_the_field(world, changes, field):
    body = {"creator_id": world.creator.pk, "price": 12, "recipients": 200, "unlocks": 10} | changes
    response = token_client(world.owner, "write").post(f"{BASE}/offers", body, content_type=JSON)
    assert response.status_code == 422, response.content
    assert field in error(response)["fields"]
    assert not Offer.objects.exists()


def test_an_offer_without_a_currency_is_in_the_creators_currency(world):
    world.creator.currency = "EUR"
    world.creator.save(update_fields=["currency"])
    client = token_client(world.owner, "write")
    body = {"creator_id": world.creator.pk, "price": 12, "recipients": 200}
    assert client.post(f"{BASE}/offers", body, content_type=JSON).json()["currency"] == "EUR"
    assert client.post(f"{BASE}/offers", body | {"currency": "gbp"}, content_type=JSON).json()["currency"] == "GBP"


@pytest.mark.parametrize("sent_at", ["0001-01-01T00:00:00+05:45", "1999-12-31T23:00:00Z"])
def test_an_offer_sent_before_2000_is_a_400_naming_sent_at(world, sent_at):
    # Year 1 at +05:45 is before year 1 in UTC: a 500 on SQLite, a row PostgreSQL stores but
    # psycopg cannot read back (every later list of the agency's offers would fail).
    body = {"creator_id": world.creator.pk, "price": 12, "recipients": 200, "sent_at": sent_at}
    response = token_client(world.owner, "write").post(f"{BASE}/offers", body, content_type=JSON)
    assert response.status_code == 400, response.content
    assert "between the years 2000 and 2200" in error(response)["fields"]["sent_at"][0]
    assert not Offer.objects.exists()


def test_offers_refuse_viewers_and_foreign_creators(world, other_world):
    body = {"creator_id": world.creator.pk, "price": 12, "recipients": 200}
    assert token_client(world.viewer, "read").post(f"{BASE}/offers", body, content_type=JSON).status_code == 403
    foreign = body | {"creator_id": other_world.creator.pk}
    assert token_client(world.owner, "write").post(f"{BASE}/offers", foreign, content_type=JSON).status_code == 404
    assert (
        token_client(world.owner, "read").get(f"{BASE}/offers", {"creator_id": other_world.creator.pk}).status_code
        == 404
    )
