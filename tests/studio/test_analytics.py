"""Studio analytics on small, hand-computed histories (engagement rate = (likes + comments) / views)."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.studio import analytics
from apps.studio.analytics import CategoryTrend, TagTrend, Trends
from tests.accounts.factories import CreatorFactory
from tests.studio.factories import ContentIdeaFactory, PostFactory


@pytest.fixture(autouse=True)
def _empty_cache():
    # Test databases reuse primary keys, so trends cached by one test would answer the next.
    cache.clear()
    yield
    cache.clear()


def ago(days: float) -> datetime:
    return timezone.now() - timedelta(days=days)


def post(creator, *, rate: float = 0.05, days: float = 1, views: int = 1000, **fields):
    """A post whose engagement rate is exactly ``rate`` (all engagement as likes unless given)."""
    comments = fields.pop("comments", 0)
    likes = round(rate * views) - comments
    return PostFactory(creator=creator, posted_at=ago(days), views=views, likes=likes, comments=comments, **fields)


# --- Tags and categories --------------------------------------------------------------------


def test_tag_performance_formula(world, other_world):
    post(world.creator, rate=0.10, tags=["Beach", "#sunset"], revenue=Decimal("10"))
    post(world.creator, rate=0.04, tags=["beach"], revenue=Decimal("20"))
    post(world.creator, rate=0.02, tags=[])
    post(world.creator, rate=0.50, tags=["beach"], days=100)  # outside the 90-day window
    post(other_world.creator, rate=0.50, tags=["beach"])  # someone else's

    stats = analytics.tag_performance(creator=world.creator)

    overall = (0.10 + 0.04 + 0.02) / 3
    assert [s.tag for s in stats] == ["sunset", "beach"]
    sunset, beach = stats
    assert beach.posts == 2
    assert beach.avg_engagement_rate == pytest.approx(0.07)
    assert beach.avg_revenue == Decimal("15.00")
    assert beach.lift == pytest.approx(0.07 / overall - 1)  # 0.3125
    assert beach.lift == pytest.approx(0.3125)
    assert sunset.lift == pytest.approx(0.875)


def test_category_performance_formula(world):
    post(world.creator, rate=0.05, category="ppv", ppv_unlocks=30, revenue=Decimal("300"), tips=Decimal("20"))
    post(world.creator, rate=0.05, views=500, category="ppv", ppv_unlocks=20, revenue=Decimal("100"))
    post(world.creator, rate=0.01, category="story")

    stats = analytics.category_performance(creator=world.creator)

    ppv = stats["ppv"]
    assert ppv.posts == 2
    assert ppv.avg_revenue == Decimal("200.00")
    assert ppv.total_revenue == Decimal("400.00")
    assert ppv.avg_tips == Decimal("10.00")
    assert ppv.ppv_unlock_rate == pytest.approx(50 / 1500)
    assert ppv.tips_share == pytest.approx(20 / 400)
    assert ppv.lift == pytest.approx(0.05 / ((0.05 + 0.05 + 0.01) / 3) - 1)
    assert stats["story"].avg_revenue == Decimal("0.00")
    assert set(stats) == {"ppv", "story"}


@pytest.mark.parametrize("count", [10, 100])
def test_tag_performance_query_count_is_constant(world, django_assert_num_queries, count):
    PostFactory.create_batch(count, creator=world.creator, tags=["a", "b"])
    with django_assert_num_queries(1):
        stats = analytics.tag_performance(creator=world.creator)
    assert stats[0].posts == count


# --- Trends ---------------------------------------------------------------------------------


def trend_history(creator):
    for days in (1, 2, 3):
        post(creator, rate=0.10, days=days, tags=["frieren", "rare"] if days < 3 else ["frieren"])
        post(creator, rate=0.02, days=days, tags=["selfie"])
    for days in (10, 15, 20):
        post(creator, rate=0.05, days=days, tags=["frieren"])
        post(creator, rate=0.04, days=days, tags=["selfie"])
    post(creator, rate=0.9, days=40, tags=["frieren"])  # outside the 28-day window


def test_rising_trends_compare_last_week_with_the_three_before(world, other_world):
    trend_history(world.creator)
    trend_history(other_world.creator)
    for days in (1, 2, 3):
        post(other_world.creator, rate=0.5, days=days, tags=["selfie"])  # other agency, ignored

    trends = analytics.rising_trends(agency_id=world.agency.pk)

    assert [t.tag for t in trends.tags] == ["frieren"]
    assert trends.tags[0].growth_pct == 100.0  # 0.10 / 0.05 - 1
    assert (trends.tags[0].recent_posts, trends.tags[0].base_posts) == (3, 3)
    assert [(t.tag, t.growth_pct) for t in trends.cooling_tags] == [("selfie", -50.0)]
    assert trends.growth(tag="rare") is None  # two posts: below the minimum support of 3
    # photo: (3 x 0.10 + 3 x 0.02) / 6 = 0.06 against (3 x 0.05 + 3 x 0.04) / 6 = 0.045
    assert [(c.category, c.growth_pct) for c in trends.categories] == [("photo", 33.3)]


def test_trends_are_cached_per_agency_and_creator_until_invalidated(world, django_assert_num_queries):
    trend_history(world.creator)
    with django_assert_num_queries(2):
        first = analytics.rising_trends(agency_id=world.agency.pk)
    with django_assert_num_queries(0):
        again = analytics.rising_trends(agency_id=world.agency.pk)
    assert again.tags == first.tags
    assert cache.get(f"studio:trends:{world.agency.pk}:all") is not None

    mine = analytics.rising_trends(agency_id=world.agency.pk, creator=world.other_creator)
    assert mine.tags == []
    assert cache.get(f"studio:trends:{world.agency.pk}:{world.other_creator.pk}") is not None

    analytics.invalidate_trends(world.agency.pk)
    assert cache.get(f"studio:trends:{world.agency.pk}:all") is None
    assert cache.get(f"studio:trends:{world.agency.pk}:{world.other_creator.pk}") is None
    with django_assert_num_queries(2):
        analytics.rising_trends(agency_id=world.agency.pk)


def test_trends_refuse_a_creator_of_another_agency(world, other_world):
    with pytest.raises(PermissionDenied):
        analytics.rising_trends(agency_id=world.agency.pk, creator=other_world.creator)


# --- Seasonality ----------------------------------------------------------------------------


def test_computed_holiday_dates():
    assert analytics.easter_sunday(2027) == date(2027, 3, 28)
    assert analytics.easter_sunday(2026) == date(2026, 4, 5)
    assert analytics.black_friday(2026) == date(2026, 11, 27)
    assert analytics.black_friday(2027) == date(2027, 11, 26)
    assert analytics.oktoberfest(2026) == (date(2026, 9, 19), date(2026, 10, 4))
    assert analytics.oktoberfest(2023) == (date(2023, 9, 16), date(2023, 10, 3))  # first Sunday is Oct 1
    assert analytics.last_friday(2027, 1) == date(2027, 1, 29)

    events = {e.key: e for e in analytics.calendar_events(locale="en-US", year=2027)}
    assert (events["easter"].starts, events["easter"].ends) == (date(2027, 3, 26), date(2027, 3, 29))
    assert (events["valentines"].starts, events["valentines"].ends) == (date(2027, 2, 7), date(2027, 2, 14))
    black_friday = {e.key: e for e in analytics.calendar_events(locale="en-US", year=2026)}["black_friday"]
    assert (black_friday.starts, black_friday.ends) == (date(2026, 11, 27), date(2026, 11, 30))
    pt = {e.key: e for e in analytics.calendar_events(locale="pt-BR", year=2027)}
    assert pt["carnival"].ends == date(2027, 2, 9)  # Shrove Tuesday = Easter - 47 days


def test_seasonality_window_relevance_and_locale(world):
    creator = world.creator  # en, Europe/Paris, fitness
    soon = {e.key: e for e in analytics.seasonality(creator=creator, on=date(2027, 2, 1))}
    assert soon["valentines"].starts == date(2027, 2, 7)
    # base 0.95 x closeness (1 - 0.5 x 6 days / 60) = 0.9025
    assert soon["valentines"].relevance == pytest.approx(0.90, abs=0.01)
    assert "Starts in 6 days" in soon["valentines"].reason
    paydays = [
        (e.starts, e.ends) for e in analytics.seasonality(creator=creator, on=date(2027, 2, 1)) if e.key == "payday"
    ]
    assert paydays == [(date(2027, 2, 26), date(2027, 2, 28)), (date(2027, 3, 26), date(2027, 3, 28))]  # last Fridays
    assert "payday_mid" not in soon  # en-GB (a European time zone) is paid monthly
    spill = analytics.seasonality(creator=creator, on=date(2027, 5, 1))  # April 30 is a Friday
    assert ("payday", date(2027, 4, 30)) in {(e.key, e.starts) for e in spill}
    running = {e.key: e for e in analytics.seasonality(creator=creator, on=date(2027, 2, 10))}
    assert running["valentines"].relevance == 0.95
    assert "Halloween" not in {e.name for e in running.values()}

    american = CreatorFactory(agency=world.agency, language="en", timezone="America/New_York")
    assert analytics.creator_locale(american) == "en-US"
    keys = {(e.key, e.starts) for e in analytics.seasonality(creator=american, on=date(2027, 1, 20))}
    assert ("payday_mid", date(2027, 2, 15)) in keys
    assert ("payday", date(2027, 1, 29)) in keys

    for language, tz, on, key, starts in [
        ("es", "Europe/Madrid", date(2027, 1, 1), "reyes", date(2027, 1, 5)),
        ("fr", "Europe/Paris", date(2027, 7, 1), "fete_nationale", date(2027, 7, 13)),
        ("de", "Europe/Berlin", date(2026, 9, 1), "oktoberfest", date(2026, 9, 19)),
        ("it", "Europe/Rome", date(2027, 8, 1), "ferragosto", date(2027, 8, 14)),
        ("pt", "America/Sao_Paulo", date(2027, 1, 20), "carnival", date(2027, 2, 6)),
    ]:
        local = CreatorFactory(agency=world.agency, language=language, timezone=tz)
        events = {e.key: e for e in analytics.seasonality(creator=local, on=on)}
        assert events[key].starts == starts, language


def test_seasonality_adds_the_creators_best_weekday_and_hour(world, django_assert_num_queries):
    zone = ZoneInfo("Europe/Paris")
    today = timezone.now().astimezone(zone).date()
    last_saturday = today - timedelta(days=(today.weekday() - 5) % 7)
    last_tuesday = today - timedelta(days=(today.weekday() - 1) % 7)
    for week in (1, 2, 3):
        saturday, tuesday = last_saturday - timedelta(weeks=week), last_tuesday - timedelta(weeks=week)
        PostFactory(creator=world.creator, posted_at=datetime(*saturday.timetuple()[:3], 21, tzinfo=zone), likes=100,
                    comments=0)  # fmt: skip
        PostFactory(creator=world.creator, posted_at=datetime(*tuesday.timetuple()[:3], 10, tzinfo=zone), likes=40,
                    comments=0)  # fmt: skip

    with django_assert_num_queries(2):
        events = analytics.seasonality(creator=world.creator, on=today)

    slot = next(e for e in events if e.key == "best_weekday")
    assert slot.name == "Your best slot: Saturday around 21:00"
    assert slot.starts.weekday() == 5 and 0 <= (slot.starts - today).days < 7
    assert slot.relevance == round(0.5 + (0.10 / 0.07 - 1), 2)  # 0.5 + lift
    assert "10.0% engagement against 7.0% overall" in slot.reason


def test_seasonality_best_month_needs_three_supported_months(world):
    for days, rate in ((30, 0.04), (90, 0.04), (150, 0.12)):
        for extra in range(3):
            post(world.creator, rate=rate, days=days + extra / 1000)
    today = timezone.now().date()
    events = analytics.seasonality(creator=world.creator, on=today, horizon_days=366)
    best = next(e for e in events if e.key == "best_month")
    best_month = (timezone.now() - timedelta(days=150)).astimezone(ZoneInfo("Europe/Paris")).month
    assert best.starts.month == best_month and best.starts.day == 1
    assert best.kind == "pattern"


# --- Captions -------------------------------------------------------------------------------


def test_caption_features_are_counted():
    report = analytics.caption_features("Link in bio ✨😘 want more? #cosplay #maid")
    assert (report.words, report.emoji_count, report.hashtag_count) == (5, 2, 2)
    assert report.has_cta and report.asks_question
    assert analytics.caption_features("escríbeme 🔥").cta_phrases == ("escríbeme",)
    assert not analytics.caption_features("a quiet day").has_cta


def test_caption_recommendations_follow_the_creators_data(world, django_assert_num_queries):
    for _ in range(4):
        post(world.creator, rate=0.05, comments=30, caption="do you like it?")  # comment rate 0.03
        post(world.creator, rate=0.05, comments=10, caption="new set is live")  # comment rate 0.01

    with django_assert_num_queries(1):
        report = analytics.caption_analysis(
            creator=world.creator, caption="fresh photos from the beach", platform="onlyfans"
        )

    assert report.recommendations == ["Captions with a question get 200% more comments for you — end with one."]
    question = next(f for f in report.features if f.feature == "question")
    assert (question.with_posts, question.without_posts) == (4, 4)
    assert question.effect == pytest.approx(2.0)
    assert report.best_length_band == (4, 4)  # every caption has 4 words: no band to compare, no advice
    asking = analytics.caption_analysis(creator=world.creator, caption="do you want more?", platform="onlyfans")
    assert asking.recommendations == []


def test_no_caption_recommendation_without_enough_posts(world):
    for _ in range(2):
        post(world.creator, rate=0.05, comments=30, caption="do you like it?")
    for _ in range(4):
        post(world.creator, rate=0.05, comments=10, caption="new set is live")
    report = analytics.caption_analysis(creator=world.creator, caption="fresh photos", platform="onlyfans")
    assert report.recommendations == []
    assert next(f for f in report.features if f.feature == "question").effect is None


def test_caption_platform_rules_are_warnings(world):
    report = analytics.caption_analysis(creator=world.creator, caption="hi #a #b #c #d", platform="x")
    assert report.recommendations == []
    assert report.warnings == ["X post: at most 3 hashtags; this one has 4."]


# --- Hashtags -------------------------------------------------------------------------------


@pytest.fixture
def tagged(world):
    """Twelve good tags (2 posts each at 8%), one that hurts (3 posts at 1%)."""
    good = ["nsfw", "maid", "cosplay", "wig", "anime", "kawaii", "genshin", "frieren", "weeb", "photoshoot", "maidcafe",
            "teen"]  # fmt: skip
    for i, tag in enumerate(good):
        for _ in range(2):
            post(world.creator, rate=0.08 - i * 0.001, tags=[tag])
    for _ in range(3):
        post(world.creator, rate=0.01, tags=["selfie"])
    return world.creator


@pytest.mark.parametrize(("platform", "limit"), [("instagram", 30), ("tiktok", 10), ("x", 3), ("onlyfans", 20)])
def test_hashtags_respect_platform_limits(tagged, platform, limit):
    tags = analytics.hashtag_suggestions(creator=tagged, strategy="niche", count=50, platform=platform)
    assert 0 < len(tags) <= limit
    assert len(tags) == len(set(tags))
    assert all(t.startswith("#") and t == t.lower() and " " not in t for t in tags)
    assert "#teen" not in tags
    assert "#selfie" not in tags


def test_reddit_takes_no_hashtags(tagged):
    assert analytics.hashtag_suggestions(creator=tagged, strategy="niche", count=5, platform="reddit") == []


def test_forbidden_banned_and_preferred_hashtags(tagged):
    onlyfans = analytics.hashtag_suggestions(creator=tagged, strategy="niche", count=3, platform="onlyfans")
    assert onlyfans == ["#nsfw", "#maid", "#cosplay"]  # best lift first
    instagram = analytics.hashtag_suggestions(
        creator=tagged, strategy="niche", count=3, platform="instagram", banned={"#Maid"}
    )
    assert instagram == ["#cosplay", "#wig", "#anime"]
    mixed = analytics.hashtag_suggestions(
        creator=tagged, strategy="niche", count=4, platform="onlyfans", preferred=["Selfie", "#New Set", "nsfw", "teen"]
    )
    assert mixed == ["#newset", "#nsfw", "#maid", "#cosplay"]  # selfie hurts this creator; teen is never suggested


def test_trending_hashtags_come_from_the_agencys_rising_tags(world):
    trend_history(world.other_creator)
    assert analytics.hashtag_suggestions(creator=world.creator, strategy="trending", count=5, platform="x") == [
        "#frieren"
    ]
    cache.clear()
    for _ in range(3):  # two months ago: part of the creator's history, not of this month's trends
        post(world.creator, rate=0.01, days=60, tags=["frieren"])
        post(world.creator, rate=0.10, days=60, tags=["other"])
    # Rising in the agency, but it hurts this creator (lift 0.01 / 0.055 - 1 = -82%).
    assert analytics.hashtag_suggestions(creator=world.creator, strategy="trending", count=5, platform="x") == []


# --- Idea scores ----------------------------------------------------------------------------


def test_score_idea_without_history_is_neutral(world):
    scores = analytics.score_idea(creator=world.creator, category="video", tags=["lace"])
    assert (scores.estimated_engagement, scores.trend_score) == (50, 50)
    assert scores.monetization == {"ppv_suitability": 50, "subscription_value": 50, "tip_potential": 50}
    assert scores.explanation["summary"] == "not enough posts yet (n < 5)"


def test_score_idea_formulas(world, django_assert_num_queries):
    for rate, revenue in ((0.02, 0), (0.03, 10), (0.04, 20)):
        post(
            world.creator, rate=rate, category="photo", revenue=Decimal(revenue), tags=["lace"] if rate == 0.04 else []
        )
    for rate, revenue, tips in ((0.06, 30, 5), (0.08, 40, 10), (0.10, 50, 15)):
        post(world.creator, rate=rate, category="video", revenue=Decimal(revenue), tips=Decimal(tips),
             tags=["lace"] if rate > 0.06 else [])  # fmt: skip
    now = timezone.now()
    trends = Trends(
        tags=[TagTrend(recent_posts=3, base_posts=3, recent_rate=0.07, base_rate=0.05, growth_pct=40.0, tag="lace")],
        categories=[],
        cooling_tags=[],
        cooling_categories=[
            CategoryTrend(
                recent_posts=3, base_posts=3, recent_rate=0.04, base_rate=0.05, growth_pct=-20.0, category="video"
            )
        ],
        computed_at=now,
        days=28,
        posts=12,
    )

    with django_assert_num_queries(1):
        scores = analytics.score_idea(creator=world.creator, category="video", tags=["#Lace"], trends=trends)

    # expected rate = 0.5 x video avg 0.08 + 0.5 x lace avg (0.04 + 0.08 + 0.10) / 3; 4 of 6 rates below it
    assert scores.estimated_engagement == 67
    assert scores.trend_score == 70  # 50 + best growth 40 / 2
    # revenue pct of the video avg (40): (4 below + 0.5) / 6 = 75; unlock rates all 0: 50
    assert scores.ppv_suitability == 60  # 0.6 x 50 + 0.4 x 75
    assert scores.subscription_value == 75  # 0.5 x 75 + 0.5 x 75 (rate 0.08: 4 below, 1 equal)
    assert scores.tip_potential == 60  # 0.7 x 75 + 0.3 x 100 x (30 / 120)
    inputs = scores.explanation["estimated_engagement"]["inputs"]
    assert inputs["expected_rate"] == round(0.5 * 0.08 + 0.5 * (0.22 / 3), 4)
    assert scores.explanation["trend_score"]["inputs"]["growth"] == {"#lace": 40.0, "video": -20.0}
    json.dumps(scores.explanation)
    idea = ContentIdeaFactory(creator=world.creator, title="Lace video", **scores.model_fields())
    assert idea.tip_potential == 60


def test_score_idea_stays_within_bounds(world):
    rng = random.Random(7)
    for _ in range(40):
        post(world.creator, rate=rng.uniform(0, 0.3), category=rng.choice(["photo", "video", "ppv", "story"]),
             tags=rng.sample(["a", "b", "c", "d"], 2), revenue=Decimal(rng.randint(0, 500)),
             tips=Decimal(rng.randint(0, 50)), ppv_unlocks=rng.randint(0, 40), days=rng.uniform(0, 170))  # fmt: skip
    trends = analytics.rising_trends(agency_id=world.agency.pk)
    for category in ("photo", "video", "ppv", "story", "live"):
        for tags in ([], ["a"], ["a", "b", "zzz"]):
            scores = analytics.score_idea(creator=world.creator, category=category, tags=tags, trends=trends)
            values = [scores.estimated_engagement, scores.trend_score, *scores.monetization.values()]
            assert all(0 <= v <= 100 for v in values), (category, tags, values)


# --- Near-duplicates ------------------------------------------------------------------------


def test_title_fingerprint_and_near_duplicates():
    assert analytics.title_fingerprint("The NEW Maid Café set! ✨") == "cafe maid set"
    assert analytics.title_fingerprint("maid set — café") == "cafe maid set"
    titles = ["Boudoir set in red lace", "Beach day"]
    assert analytics.near_duplicate("Red lace boudoir set", titles) == "Boudoir set in red lace"
    # Jaccard {sunset, bikini, set, rocks} vs {sunset, bikini, set, beach} = 3 / 5 = 0.6
    assert analytics.near_duplicate("Sunset bikini set on the rocks", ["Sunset bikini set at the beach"])
    assert analytics.near_duplicate("Sunset bikini set on the rocks", ["Sunset bikini at the beach"]) is None
    assert analytics.near_duplicate("Leg day routine", ["Pilates at home", "Beach day"]) is None
    assert len(analytics.title_fingerprint(" ".join(f"word{i}" for i in range(40)))) <= 64
