"""AI cost reports on fixed ledger data: spend rollups, the forecast, savings advice, cost per
accepted draft and revenue; and the cost dashboard page (roles, tenants, queries, empty state)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from apps.ai.models import AIRequestLog
from apps.messaging.models import Direction, Draft, DraftStatus, Source
from apps.monitoring import cost
from apps.monitoring.cost import LedgerRow, forecast_month, savings_advice
from apps.monitoring.models import Budget
from tests.messaging.factories import ConversationFactory, FanFactory, MessageFactory, PurchaseFactory

D = Decimal


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def log(agency, *, when, cost_usd="0.01", provider="openai", model="gpt-4o-mini", feature="studio.caption",
        creator=None, **extra) -> AIRequestLog:  # fmt: skip
    return AIRequestLog.objects.create(
        agency=agency, creator=creator, feature=feature, provider=provider, model=model,
        cost_usd=D(cost_usd), created_at=when, attempts=1, **extra,
    )  # fmt: skip


# --- Forecast --------------------------------------------------------------------------------------


def test_forecast_projects_the_recent_daily_mean_with_a_band_from_its_spread():
    daily = {date(2026, 5, d): D(1) for d in (1, 2, 3)}
    daily.update({date(2026, 5, 3 + i): D(i) for i in range(1, 8)})  # May 4..10: 1..7
    daily[date(2026, 5, 11)] = D("0.5")  # today, so far
    f = forecast_month(daily=daily, month=date(2026, 5, 1), today=date(2026, 5, 11), first_day=date(2026, 5, 1))

    assert f.spent == D("31.5")
    assert f.sample_days == 7
    assert f.daily_mean == D("4.0000")
    assert f.daily_stdev == D("2.1602")
    assert f.days_left == 20  # May 12..31
    # 31 before today + max(0.5, 4) for today + 4 a day for 20 days
    assert f.projected == D("115.0000")
    half = 1.645 * 2.160246899469287 * math.sqrt(21)
    assert f.low == D(115 - half).quantize(D("0.0001"))
    assert f.high == D(115 + half).quantize(D("0.0001"))
    assert f.path[0][0] == date(2026, 5, 11) and f.path[-1][0] == date(2026, 5, 31)
    assert f.path[-1][1] == f.projected
    assert not f.complete


def test_forecast_of_a_new_agency_ignores_the_days_before_it_used_ai():
    daily = {date(2026, 5, 9): D(6), date(2026, 5, 10): D(8)}
    f = forecast_month(daily=daily, month=date(2026, 5, 1), today=date(2026, 5, 11), first_day=date(2026, 5, 9))
    assert f.sample_days == 2
    assert f.daily_mean == D("7.0000")
    assert f.projected == D(14 + 7 + 7 * 20)


def test_forecast_samples_the_end_of_last_month_on_the_first_day():
    daily = {date(2026, 4, 30): D(3), date(2026, 4, 29): D(3), date(2026, 5, 1): D(1)}
    f = forecast_month(daily=daily, month=date(2026, 5, 1), today=date(2026, 5, 1), first_day=date(2026, 4, 29))
    assert f.spent == D(1)
    assert f.daily_mean == D(3)
    assert f.daily_stdev == D(0)
    assert f.projected == f.low == f.high == D(3 * 31)


def test_a_past_month_is_its_total():
    daily = {date(2026, 4, 3): D(2), date(2026, 4, 20): D(5), date(2026, 5, 1): D(9)}
    f = forecast_month(daily=daily, month=date(2026, 4, 1), today=date(2026, 5, 11))
    assert f.complete
    assert f.projected == f.low == f.high == D(7)


# --- Savings advice on fixed rows ------------------------------------------------------------------


def row(feature="studio.caption", provider="openai", model="gpt-4o-mini", input_tokens=1000, cost="0.01", **kw):
    return LedgerRow(feature, provider, model, input_tokens, kw.pop("cached", 0), kw.pop("output", 100), D(cost), **kw)


def kinds(advice, kind):
    return [item for item in advice if item.kind == kind]


def test_cache_advice_prices_the_hits_missing_to_the_target(settings):
    settings.AI_COST_CACHE_TARGET = 0.25
    rows = [row() for _ in range(40)]  # 40 paid calls at $0.01, no cache hit
    [advice] = kinds(savings_advice(rows=rows, outcomes=[], window_days=30), "cache")
    # (25% - 0%) x 40 answers = 10 more hits x $0.01
    assert advice.monthly_saving == D("0.10")
    assert "studio.caption" in advice.title


def test_cache_advice_is_scaled_to_a_month_and_skips_features_at_the_target(settings):
    settings.AI_COST_CACHE_TARGET = 0.25
    rows = [row() for _ in range(40)] + [row(feature="inbox.reply") for _ in range(30)]
    rows += [row(feature="inbox.reply", cache_hit=True, cost="0") for _ in range(10)]  # 25% already
    advice = kinds(savings_advice(rows=rows, outcomes=[], window_days=10), "cache")
    assert [(item.title, item.monthly_saving) for item in advice] == [
        ("Cache more answers of studio.caption", D("0.30"))
    ]


def test_model_advice_picks_the_cheaper_provider_whose_drafts_are_accepted_as_often(settings):
    settings.AI_COST_ACCEPTANCE_TOLERANCE = 0.05
    rows = [row(feature="inbox.reply", provider="openai", cost="0.002") for _ in range(50)]
    rows += [row(feature="inbox.reply", provider="builtin", model="huntaze-builtin-1", cost="0") for _ in range(50)]
    outcomes = [
        {"creator_id": 1, "kind": "reply", "provider": "openai", "sent": 30, "discarded": 10, "pending": 3},  # 75%
        {"creator_id": 1, "kind": "reply", "provider": "builtin", "sent": 36, "discarded": 14, "pending": 0},  # 72%
    ]
    [advice] = kinds(savings_advice(rows=rows, outcomes=outcomes, window_days=30), "model")
    assert advice.title == "Use huntaze-builtin-1 (builtin) for inbox.reply"
    assert advice.monthly_saving == D("0.10")  # 50 calls x ($0.002 - $0)
    outcomes[1]["sent"], outcomes[1]["discarded"] = 30, 20  # 60%: not accepted as often
    assert kinds(savings_advice(rows=rows, outcomes=outcomes, window_days=30), "model") == []


def test_prompt_advice_prices_the_tokens_above_the_features_median():
    rows = [row(input_tokens=1000) for _ in range(20)] + [row(input_tokens=11000) for _ in range(10)]
    [advice] = kinds(savings_advice(rows=rows, outcomes=[], window_days=15), "prompt")
    # 10 calls x 10,000 tokens above the median of 1,000, at gpt-4o-mini's $0.15 per million, x 30/15 days
    assert advice.numbers["excess"] == 100_000
    assert advice.monthly_saving == D("0.03")


def test_retry_advice_counts_wasted_attempts_on_a_failing_provider(settings):
    settings.AI_COST_RETRY_ERROR_RATE = 0.05
    rows = [row(provider="openai:7") for _ in range(30)] + [row(provider="openai:7", attempts=2) for _ in range(10)]
    rows += [row(provider="openai:7", cost="0", attempts=3, error_kind="SERVER_ERROR") for _ in range(5)]
    [advice] = kinds(savings_advice(rows=rows, outcomes=[], window_days=30), "retries")
    assert advice.numbers["wasted_attempts"] == 25  # 10 second attempts + 5 x 3 failed ones
    assert advice.monthly_saving == D("0.25")  # 25 x the $0.01 a successful call costs


def test_advice_is_sorted_by_saving_and_quiet_on_small_samples():
    assert savings_advice(rows=[row() for _ in range(5)], outcomes=[], window_days=30) == []
    rows = [row(input_tokens=1000) for _ in range(20)] + [row(input_tokens=11000) for _ in range(10)]
    advice = savings_advice(rows=rows, outcomes=[], window_days=30)
    assert [item.monthly_saving for item in advice] == sorted((item.monthly_saving for item in advice), reverse=True)


# --- Spend rollups from the ledger -------------------------------------------------------------------


@pytest.mark.django_db
def test_spend_is_rolled_up_per_day_provider_model_feature_and_creator(world, other_world):
    log(world.agency, when=at(2), cost_usd="0.50", creator=world.creator)
    log(world.agency, when=at(2, 23), cost_usd="0.25", provider="anthropic", model="claude-haiku-4-5",
        feature="inbox.reply", creator=world.other_creator)  # fmt: skip
    log(world.agency, when=at(5), cost_usd="1.00")
    log(world.agency, when=at(31, 23), cost_usd="2.00", creator=world.creator)
    log(world.agency, when=at(1, 0, month=4), cost_usd="9.00")  # next month
    log(world.agency, when=at(28, 12, month=2), cost_usd="4.00")  # the week before: the forecast's sample only
    log(other_world.agency, when=at(2), cost_usd="100.00")  # another tenant

    page = cost.cost_page(membership=world.owner, month=date(2026, 3, 1), now=at(20, month=4))
    report = page.report
    assert report.total == D("3.75") and report.calls == 4
    assert report.by_day == {date(2026, 3, 2): D("0.75"), date(2026, 3, 5): D("1.00"), date(2026, 3, 31): D("2.00")}
    assert report.by_day_provider[date(2026, 3, 2)] == {"openai": D("0.50"), "anthropic": D("0.25")}
    assert [(s.key, s.cost) for s in report.providers] == [("openai", D("3.50")), ("anthropic", D("0.25"))]
    assert [(s.key, s.cost) for s in report.features] == [("studio.caption", D("3.50")), ("inbox.reply", D("0.25"))]
    assert [(s.label, s.cost) for s in report.creators] == [
        ("Velvet Star", D("2.50")), ("No creator", D("1.00")), ("Velvet Nova", D("0.25")),
    ]  # fmt: skip
    assert report.before == {date(2026, 2, 28): D("4.00")}
    assert page.forecast.complete and page.forecast.projected == D("3.75")


@pytest.mark.django_db
def test_a_chatter_sees_only_their_creators_spend(world):
    log(world.agency, when=at(2), cost_usd="0.50", creator=world.creator)
    log(world.agency, when=at(2), cost_usd="0.25", creator=world.other_creator)
    log(world.agency, when=at(2), cost_usd="1.00")
    rows = cost.spend_rows(membership=world.chatter, start=at(1, 0), end=at(1, 0, month=4))
    assert sum(r["cost"] for r in rows) == D("0.50")


@pytest.mark.django_db
def test_cost_per_accepted_draft_and_cost_against_revenue(world):
    when = at(10)
    log(world.agency, when=when, cost_usd="0.30", feature="inbox.reply", creator=world.creator)
    log(world.agency, when=when, cost_usd="0.20", feature="studio.caption", creator=world.creator)
    conversation = ConversationFactory(fan=FanFactory(creator=world.creator))
    for status in (DraftStatus.SENT, DraftStatus.SENT, DraftStatus.SENT, DraftStatus.DISCARDED):
        draft = Draft.objects.create(agency=world.agency, creator=world.creator, conversation=conversation,
                                     text="Hi", score=50, status=status, provider="openai")  # fmt: skip
        Draft.objects.filter(pk=draft.pk).update(created_at=when)
    ai_message = MessageFactory(conversation=conversation, direction=Direction.OUTBOUND, source=Source.AI_DRAFT)
    PurchaseFactory(fan=conversation.fan, amount=D("20.00"), purchased_at=when, message=ai_message)
    PurchaseFactory(fan=conversation.fan, amount=D("30.00"), purchased_at=when)
    PurchaseFactory(fan=conversation.fan, amount=D("99.00"), purchased_at=at(10, month=4))  # another month

    page = cost.cost_page(membership=world.owner, month=date(2026, 3, 1), now=at(20, month=4))
    money = page.economics
    assert money.drafts_sent == 3 and money.drafts_discarded == 1
    assert money.cost_per_accepted_draft == D("0.1000")  # $0.30 of draft calls / 3 drafts sent
    [star] = [c for c in money.creators if c.creator_id == world.creator.pk]
    assert star.ai_cost == D("0.50")
    assert star.revenue == {"USD": D("50.00")} and star.from_ai == {"USD": D("20.00")}
    assert star.cost_percent_of_revenue == pytest.approx(1.0)  # $0.50 of $50


# --- The page ----------------------------------------------------------------------------------------


URL = "/monitoring/cost/"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["owner", "manager"])
def test_owners_and_managers_see_the_empty_state(world, client_for, role):
    response = client_for(world.member(role)).get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "No AI usage in" in body
    assert "No budget yet" in body


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["chatter", "viewer"])
def test_chatters_and_viewers_are_refused(world, client_for, role):
    assert client_for(world.member(role)).get(URL).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("month", ["2026-13", "abc", "2026-1", "1999-12", "2026-05-01", "9999-01", "x" * 500])
def test_a_bad_or_future_month_is_a_400_with_the_reason(world, client_for, month):
    response = client_for(world.owner).get(URL, {"month": month})
    assert response.status_code == 400
    assert "not a month" in response.content.decode() or "has not started yet" in response.content.decode()


def _spend(world, days: int, per_day: int) -> None:
    now = timezone.now()
    for d in range(days):
        for i in range(per_day):
            log(world.agency, when=now - timedelta(minutes=d * 60 + i),
                cost_usd="0.01", creator=[world.creator, world.other_creator, None][i % 3],
                provider=["openai", "anthropic"][i % 2], feature=["studio.caption", "inbox.reply"][i % 2])  # fmt: skip


@pytest.mark.django_db
def test_the_page_shows_charts_tables_budgets_and_advice_in_constant_queries(
    world, client_for, django_assert_max_num_queries
):
    Budget.objects.create(agency=world.agency, monthly_usd=D("5.00"), thresholds=[50, 80, 100], hard_stop=True)
    Budget.objects.create(agency=world.agency, creator=world.creator, monthly_usd=D("1.00"), thresholds=[50])
    client = client_for(world.owner)
    _spend(world, days=1, per_day=3)
    with django_assert_max_num_queries(20) as small:
        response = client.get(URL)
    assert response.status_code == 200
    _spend(world, days=3, per_day=30)
    cache.clear()  # the savings advice is kept ten minutes (cost.ADVICE_CACHE_SECONDS): read it anew
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(URL)
    body = response.content.decode()
    assert "Daily spend by provider" in body and "<svg" in body
    assert "Whole agency" in body and "Velvet Star" in body and "of $5.00" in body
    assert "Forecast to the end of" in body
    assert "Ways to spend less" in body
    assert "Cache more answers of" in body  # 93 paid calls, none from the cache


@pytest.mark.django_db
def test_the_minutely_refresh_reuses_the_savings_advice_for_ten_minutes(world, client_for):
    client = client_for(world.owner)
    _spend(world, days=3, per_day=30)
    first = client.get(URL).content.decode()
    assert "Cache more answers of" in first
    AIRequestLog.objects.all().delete()  # the 30 days' ledger is not read again for the advice
    again = client.get(URL, headers={"HX-Request": "true"}).content.decode()
    assert "Cache more answers of" in again and "No AI usage in" in again


@pytest.mark.django_db
def test_the_htmx_refresh_returns_the_content_fragment(world, client_for):
    response = client_for(world.owner).get(URL, headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="cost-content"')
    assert "<html" not in body


@pytest.mark.django_db
def test_another_tenants_spend_never_shows(world, other_world, client_for):
    log(other_world.agency, when=timezone.now(), cost_usd="77.77", feature="rival.secret")
    body = client_for(world.owner).get(URL).content.decode()
    assert "rival.secret" not in body and "77.77" not in body
    assert "No AI usage in" in body


@pytest.mark.django_db
def test_the_dashboard_card_shows_the_month_against_the_budget(world, client_for):
    Budget.objects.create(agency=world.agency, monthly_usd=D("10.00"), thresholds=[50])
    log(world.agency, when=timezone.now(), cost_usd="2.50")
    body = client_for(world.owner).get("/").content.decode()
    assert "$2.50</strong> spent on AI" in body and "$10.00" in body
    assert "spent on AI" not in client_for(world.viewer).get("/").content.decode()
