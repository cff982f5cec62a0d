"""API: a month's AI spend and forecast, budgets with this month's spend against them, and the
agency's budget alerts; who may read and change them, and the field named in every refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.ai.models import AIRequestLog
from apps.core.shared import DatabaseSharedState, shared_state
from apps.monitoring import alerts
from apps.monitoring.budgets import budgets_evaluate, month_start, next_month
from apps.monitoring.models import Alert, Budget
from tests.messaging.api_helpers import error, token_client

pytestmark = pytest.mark.django_db

D = Decimal
JSON = "application/json"
BUDGETS = "/api/v1/ai-budgets"


def log(agency, *, when, cost_usd, provider="openai", model="gpt-4o-mini", feature="studio.caption", creator=None):
    return AIRequestLog.objects.create(
        agency=agency, creator=creator, feature=feature, provider=provider, model=model,
        cost_usd=D(cost_usd), created_at=when, attempts=1,
    )  # fmt: skip


def noon(day) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def budget_url(budget) -> str:
    return f"{BUDGETS}/{budget if isinstance(budget, int) else budget.pk}"


# --- Spend --------------------------------------------------------------------------------------


def test_a_past_months_spend_adds_up_the_ledger_per_day_provider_model_feature_and_creator(world, other_world):
    this_month = month_start(timezone.now())
    month = month_start(this_month - timedelta(days=1))
    day2, day5 = month.replace(day=2), month.replace(day=5)
    log(world.agency, when=noon(day2), cost_usd="0.50", creator=world.creator)
    log(world.agency, when=noon(day2), cost_usd="0.25", provider="anthropic", model="claude-haiku-4-5",
        feature="inbox.reply", creator=world.other_creator)  # fmt: skip
    log(world.agency, when=noon(day5), cost_usd="1.00")
    log(world.agency, when=noon(this_month), cost_usd="9.00")  # the next month
    log(world.agency, when=noon(month - timedelta(days=2)), cost_usd="4.00")  # the month before
    log(other_world.agency, when=noon(day2), cost_usd="100.00")  # another agency

    response = token_client(world.manager).get("/api/v1/ai-cost", {"month": f"{month:%Y-%m}"})

    assert response.status_code == 200, response.content
    report = response.json()
    assert (report["month"], report["current"], report["currency"]) == (f"{month:%Y-%m}", False, "USD")
    assert (report["total_usd"], report["calls"]) == ("1.750000", 3)
    assert report["days"] == [
        {"date": f"{day2}", "cost_usd": "0.750000", "providers": {"openai": "0.500000", "anthropic": "0.250000"}},
        {"date": f"{day5}", "cost_usd": "1.000000", "providers": {"openai": "1.000000"}},
    ]
    assert report["providers"] == [
        {"provider": "openai", "cost_usd": "1.500000", "calls": 2},
        {"provider": "anthropic", "cost_usd": "0.250000", "calls": 1},
    ]
    assert report["models"] == [
        {"provider": "openai", "model": "gpt-4o-mini", "cost_usd": "1.500000", "calls": 2},
        {"provider": "anthropic", "model": "claude-haiku-4-5", "cost_usd": "0.250000", "calls": 1},
    ]
    assert report["features"] == [
        {"feature": "studio.caption", "cost_usd": "1.500000", "calls": 2},
        {"feature": "inbox.reply", "cost_usd": "0.250000", "calls": 1},
    ]
    assert report["creators"] == [
        {"creator_id": None, "name": "No creator", "cost_usd": "1.000000", "calls": 1},
        {"creator_id": world.creator.pk, "name": "Velvet Star", "cost_usd": "0.500000", "calls": 1},
        {"creator_id": world.other_creator.pk, "name": "Velvet Nova", "cost_usd": "0.250000", "calls": 1},
    ]
    assert report["forecast"] is None  # a past month is what it was


def test_the_current_month_has_a_forecast_from_the_last_seven_days(world):
    """A dollar on each of the seven days before today, nothing yet today: the mean is $1 a day
    with no spread, so the month ends at what is spent + $1 for today + $1 for each day left."""
    today = timezone.now().astimezone(UTC).date()
    month = month_start(today)
    for back in range(1, 8):
        log(world.agency, when=noon(today - timedelta(days=back)), cost_usd="1.00")
    spent = sum(1 for back in range(1, 8) if today - timedelta(days=back) >= month)
    days_left = (next_month(month) - today).days - 1

    report = token_client(world.owner).get("/api/v1/ai-cost").json()

    assert (report["month"], report["current"]) == (f"{month:%Y-%m}", True)
    assert report["total_usd"] == f"{spent}.000000" and report["calls"] == spent
    projected = f"{spent + 1 + days_left}.000000"
    assert report["forecast"] == {
        "projected_usd": projected,
        "low_usd": projected,
        "high_usd": projected,
        "daily_mean_usd": "1.000000",
        "daily_stdev_usd": "0.000000",
        "sample_days": 7,
        "days_left": days_left,
    }


@pytest.mark.parametrize("month", ["2026-13", "abc", "2026-1", "1999-12", "2026-05-01", "9999-01", "x" * 500])
def test_a_malformed_or_future_month_is_a_400_naming_the_field(world, month):
    response = token_client(world.owner).get("/api/v1/ai-cost", {"month": month})
    assert response.status_code == 400
    reason = error(response)["fields"]["month"][0]
    assert "is not a month" in reason or "has not started yet" in reason


def test_next_month_has_not_started(world):
    upcoming = next_month(month_start(timezone.now()))
    response = token_client(world.owner).get("/api/v1/ai-cost", {"month": f"{upcoming:%Y-%m}"})
    assert response.status_code == 400
    assert error(response)["fields"]["month"] == [f"{upcoming:%B %Y} has not started yet."]


def test_another_agencys_spend_never_shows(world, other_world):
    log(other_world.agency, when=timezone.now() - timedelta(minutes=1), cost_usd="77.77", feature="rival.secret")
    report = token_client(world.owner).get("/api/v1/ai-cost").json()
    assert (report["total_usd"], report["calls"], report["features"], report["creators"]) == ("0.000000", 0, [], [])


# --- Budgets ------------------------------------------------------------------------------------


def test_each_budget_shows_this_months_spend_against_it(world):
    now = timezone.now()
    agency_wide = Budget.objects.create(agency=world.agency, monthly_usd=D("10.00"), thresholds=[20, 100])
    star = Budget.objects.create(agency=world.agency, creator=world.creator, monthly_usd=D("0.50"), thresholds=[50])
    nova = Budget.objects.create(agency=world.agency, creator=world.other_creator, monthly_usd=D("4.00"))
    log(world.agency, when=now - timedelta(minutes=5), cost_usd="0.75", creator=world.creator)
    log(world.agency, when=now - timedelta(minutes=4), cost_usd="1.75")
    log(world.agency, when=noon(month_start(now) - timedelta(days=1)), cost_usd="50.00")  # last month

    listing = token_client(world.manager).get(BUDGETS).json()

    assert listing["count"] == 3
    month = f"{month_start(now):%Y-%m}"
    spend = [
        {key: item[key] for key in ("id", "creator_name", "month", "spent_usd", "left_usd", "percent", "used_up",
                                    "warning")}
        for item in listing["items"]
    ]  # fmt: skip
    assert spend == [  # agency-wide first, then by creator name
        {"id": agency_wide.pk, "creator_name": None, "month": month, "spent_usd": "2.500000",
         "left_usd": "7.500000", "percent": 25.0, "used_up": False, "warning": True},
        {"id": nova.pk, "creator_name": "Velvet Nova", "month": month, "spent_usd": "0.000000",
         "left_usd": "4.000000", "percent": 0.0, "used_up": False, "warning": False},
        {"id": star.pk, "creator_name": "Velvet Star", "month": month, "spent_usd": "0.750000",
         "left_usd": "0.000000", "percent": 150.0, "used_up": True, "warning": False},
    ]  # fmt: skip
    assert listing["items"][0]["thresholds"] == [20, 100] and listing["items"][1]["thresholds"] == []


def test_the_budget_list_costs_the_same_whatever_its_length_and_spend(world, django_assert_max_num_queries):
    now = timezone.now()
    Budget.objects.create(agency=world.agency, monthly_usd=D("10.00"), thresholds=[50])
    client = token_client(world.owner)
    # token, its stamp, count, page, and for the whole page: creators' names, the month's ledger,
    # and (PostgreSQL without Redis: the shared state is a table) one read of every budget's counter
    queries = 6 + isinstance(shared_state(), DatabaseSharedState)
    with django_assert_max_num_queries(queries):
        assert client.get(BUDGETS).json()["count"] == 1
    for creator in (world.creator, world.other_creator):
        Budget.objects.create(agency=world.agency, creator=creator, monthly_usd=D("1.00"), thresholds=[50])
        for minutes in range(20):
            log(world.agency, when=now - timedelta(minutes=minutes + 1), cost_usd="0.01", creator=creator)
    with django_assert_max_num_queries(queries):
        listing = client.get(BUDGETS).json()
    assert listing["count"] == 3
    assert [item["spent_usd"] for item in listing["items"]] == ["0.400000", "0.200000", "0.200000"]


def test_an_owner_creates_an_agency_budget_and_a_creator_budget(world):
    client = token_client(world.owner, scope="write")
    response = client.post(BUDGETS, {"monthly_usd": "25", "hard_stop": True}, content_type=JSON)
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["creator_id"], created["monthly_usd"], created["thresholds"], created["hard_stop"]) == (
        None, "25.00", [50, 80, 100], True,
    )  # fmt: skip
    assert (created["spent_usd"], created["percent"]) == ("0.000000", 0.0)

    body = {"creator_id": world.creator.pk, "monthly_usd": 5, "thresholds": [90, 50, 50]}
    created = client.post(BUDGETS, body, content_type=JSON).json()
    assert (created["creator_name"], created["thresholds"], created["hard_stop"]) == ("Velvet Star", [50, 90], False)
    budgets = {b.creator_id: b for b in Budget.objects.filter(agency=world.agency)}
    assert budgets[None].monthly_usd == D("25.00") and budgets[None].hard_stop
    assert budgets[world.creator.pk].monthly_usd == D("5.00") and budgets[world.creator.pk].thresholds == [50, 90]
    assert client.get(budget_url(budgets[world.creator.pk])).json()["monthly_usd"] == "5.00"


@pytest.mark.parametrize(
    ("fields", "status", "field", "message"),
    [
        ({"monthly_usd": "0"}, 400, "monthly_usd", "more than $0"),
        ({"monthly_usd": -3}, 400, "monthly_usd", "more than $0"),
        ({"thresholds": [0, 50]}, 400, "thresholds", "from 1 to 1000"),
        ({"thresholds": [50, 1001]}, 400, "thresholds", "from 1 to 1000"),
        ({"thresholds": list(range(1, 12))}, 400, "thresholds", "At most 10"),
        ({"monthly_usd": "abc"}, 422, "monthly_usd", ""),
        ({"monthly_usd": "1.001"}, 422, "monthly_usd", "decimal"),
        ({"monthly_usd": "12345678901.00"}, 422, "monthly_usd", "digits"),
        ({"thresholds": ["fifty"]}, 422, "thresholds.0", ""),
    ],
)
def test_bad_budget_input_names_the_field_and_saves_nothing(world, fields, status, field, message):
    response = token_client(world.manager).post(BUDGETS, {"monthly_usd": "25.00", **fields}, content_type=JSON)
    assert response.status_code == status
    assert message in " ".join(error(response)["fields"][field])
    assert not Budget.objects.exists()


def test_a_second_budget_for_the_same_scope_is_refused_on_creator_id(world):
    Budget.objects.create(agency=world.agency, monthly_usd=D(10), thresholds=[50])
    Budget.objects.create(agency=world.agency, creator=world.creator, monthly_usd=D(5), thresholds=[50])
    client = token_client(world.owner)
    response = client.post(BUDGETS, {"monthly_usd": "1.00"}, content_type=JSON)
    assert response.status_code == 400
    assert error(response)["fields"]["creator_id"] == [
        "The agency already has an agency-wide budget: edit that one instead."
    ]
    response = client.post(BUDGETS, {"creator_id": world.creator.pk, "monthly_usd": "1.00"}, content_type=JSON)
    assert response.status_code == 400
    assert "Velvet Star already has" in error(response)["fields"]["creator_id"][0]
    assert Budget.objects.count() == 2


def test_a_creator_of_another_agency_is_404_and_nothing_is_saved(world, other_world):
    response = token_client(world.owner).post(
        BUDGETS, {"creator_id": other_world.creator.pk, "monthly_usd": "5.00"}, content_type=JSON
    )
    assert response.status_code == 404 and error(response)["code"] == "not_found"
    assert not Budget.objects.exists()


def test_edit_keeps_what_is_left_out_and_null_creator_makes_it_agency_wide(world):
    budget = Budget.objects.create(
        agency=world.agency, creator=world.creator, monthly_usd=D(10), thresholds=[50], hard_stop=True
    )
    client = token_client(world.manager)
    response = client.patch(budget_url(budget), {"monthly_usd": "12.50", "thresholds": []}, content_type=JSON)
    assert response.status_code == 200, response.content
    assert (response.json()["monthly_usd"], response.json()["thresholds"]) == ("12.50", [])
    budget.refresh_from_db()
    assert (budget.creator_id, budget.monthly_usd, budget.thresholds, budget.hard_stop) == (
        world.creator.pk, D("12.50"), [], True,
    )  # fmt: skip

    response = client.patch(budget_url(budget), {"creator_id": None, "hard_stop": None}, content_type=JSON)
    assert response.status_code == 200 and response.json()["creator_id"] is None
    budget.refresh_from_db()
    assert (budget.creator_id, budget.hard_stop) == (None, True)

    response = client.patch(budget_url(budget), {"monthly_usd": 0}, content_type=JSON)
    assert response.status_code == 400 and "monthly_usd" in error(response)["fields"]
    budget.refresh_from_db()
    assert budget.monthly_usd == D("12.50")


def test_delete_removes_the_budget_and_its_alerts(world):
    budget = Budget.objects.create(agency=world.agency, monthly_usd=D(1), thresholds=[50])
    log(world.agency, when=timezone.now() - timedelta(minutes=1), cost_usd="0.60")
    budgets_evaluate()
    assert Alert.objects.filter(budget=budget).count() == 1
    client = token_client(world.owner)
    assert client.delete(budget_url(budget)).status_code == 204
    assert not Budget.objects.exists() and not Alert.objects.exists()
    assert client.get(budget_url(budget)).status_code == 404
    assert client.get("/api/v1/ai-alerts").json()["count"] == 0


def test_another_agencys_budget_is_404_and_stays_as_it_was(world, other_world):
    theirs = Budget.objects.create(agency=other_world.agency, monthly_usd=D(10), thresholds=[50])
    client = token_client(world.owner)
    for response in (
        client.get(budget_url(theirs)),
        client.patch(budget_url(theirs), {"monthly_usd": "1.00"}, content_type=JSON),
        client.delete(budget_url(theirs)),
    ):
        assert response.status_code == 404 and error(response)["code"] == "not_found"
    assert client.get(BUDGETS).json() == {"items": [], "count": 0}
    theirs.refresh_from_db()
    assert theirs.monthly_usd == D(10)


# --- Who may --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["chatter", "viewer"])
def test_chatters_and_viewers_get_403_everywhere_and_change_nothing(world, role, client_for):
    ours = Budget.objects.create(agency=world.agency, creator=world.creator, monthly_usd=D(10), thresholds=[50])
    for client in (token_client(world.member(role)), client_for(world.member(role))):
        responses = [
            client.get("/api/v1/ai-cost"),
            client.get(BUDGETS),
            client.get(budget_url(ours)),
            client.get("/api/v1/ai-alerts"),
            client.post(BUDGETS, {"monthly_usd": "5.00"}, content_type=JSON),
            client.patch(budget_url(ours), {"monthly_usd": "1.00"}, content_type=JSON),
            client.delete(budget_url(ours)),
        ]
        assert [response.status_code for response in responses] == [403] * 7
        assert error(responses[0])["code"] == "permission_denied"
    ours.refresh_from_db()
    assert (ours.monthly_usd, Budget.objects.count()) == (D(10), 1)


def test_a_read_token_reads_but_cannot_write(world):
    budget = Budget.objects.create(agency=world.agency, monthly_usd=D(10), thresholds=[50])
    client = token_client(world.owner, scope="read")
    for path in ("/api/v1/ai-cost", BUDGETS, budget_url(budget), "/api/v1/ai-alerts"):
        assert client.get(path).status_code == 200, path
    responses = [
        client.post(BUDGETS, {"creator_id": world.creator.pk, "monthly_usd": "5.00"}, content_type=JSON),
        client.patch(budget_url(budget), {"monthly_usd": "1.00"}, content_type=JSON),
        client.delete(budget_url(budget)),
    ]
    assert [response.status_code for response in responses] == [403] * 3
    budget.refresh_from_db()
    assert (budget.monthly_usd, Budget.objects.count()) == (D(10), 1)


# --- Alerts ---------------------------------------------------------------------------------------


def test_the_agencys_budget_alerts_newest_first_filtered_by_state(world, other_world):
    now = timezone.now()
    budget = Budget.objects.create(agency=world.agency, monthly_usd=D(10), thresholds=[50, 80])
    log(world.agency, when=now - timedelta(minutes=2), cost_usd="6.00")
    budgets_evaluate(now=now - timedelta(minutes=1))  # fires 50%
    log(world.agency, when=now - timedelta(minutes=1), cost_usd="3.00")
    budgets_evaluate(now=now)  # fires 80%
    theirs = Budget.objects.create(agency=other_world.agency, monthly_usd=D(1), thresholds=[50])
    log(other_world.agency, when=now - timedelta(minutes=1), cost_usd="0.90")
    budgets_evaluate(now=now)
    alerts.fire("slo:api:fast", kind=Alert.Kind.SLO_BURN, severity=Alert.Severity.PAGE, title="API burn rate")
    assert Alert.objects.filter(budget=theirs).exists()
    client = token_client(world.owner)

    listing = client.get("/api/v1/ai-alerts").json()
    assert listing["count"] == 2
    month = f"{month_start(now):%Y-%m}"
    newest = listing["items"][0]
    assert newest["budget_id"] == budget.pk
    assert (newest["severity"], newest["state"], newest["title"]) == ("warning", "firing", "AI budget 80% used: Velvet")
    assert newest["values"] == {"spent_usd": "9.00", "budget_usd": "10.00", "percent": 80, "month": month}
    assert listing["items"][1]["title"] == "AI budget 50% used: Velvet"

    Budget.objects.filter(pk=budget.pk).update(monthly_usd=D(100))
    budgets_evaluate(now=now)  # raised: both resolve
    assert client.get("/api/v1/ai-alerts?state=firing").json() == {"items": [], "count": 0}
    resolved = client.get("/api/v1/ai-alerts", {"state": "resolved", "page_size": 1}).json()
    assert resolved["count"] == 2 and len(resolved["items"]) == 1 and resolved["items"][0]["resolved_at"]
    assert client.get("/api/v1/ai-alerts?state=open").status_code == 422
