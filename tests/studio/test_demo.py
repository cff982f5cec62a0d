"""The studio's demo hook builds a history with the patterns the analytics is meant to find."""

from __future__ import annotations

import io
from collections import defaultdict
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.management import call_command

from apps.accounts.models import Creator
from apps.studio import analytics
from apps.studio.demo import NICHES, _niche
from apps.studio.models import ContentIdea, Post


@pytest.fixture
def demo(db):
    cache.clear()
    call_command("seed_demo", "--creators", "2", stdout=io.StringIO())
    yield list(Creator.objects.filter(display_name__in=["Luna Vale", "Marta Fit"]))
    cache.clear()


def test_demo_posts_and_ideas(demo):
    from apps.workflows.models import WorkflowRun

    assert len(demo) == 2
    # The workflows demo's weekly content plan adds its ideas to the idea board of the creator it plans for.
    planned = {
        run.input["creator_id"]: len(run.output["plan"]["posts"])
        for run in WorkflowRun.objects.filter(workflow="weekly_content_plan")
    }
    for creator in demo:
        assert Post.objects.filter(creator=creator, agency=creator.agency).count() == 150
        ideas = list(ContentIdea.objects.filter(creator=creator))
        assert len(ideas) == 5 + planned.get(creator.pk, 0)
        for idea in ideas:
            assert idea.fingerprint == analytics.title_fingerprint(idea.title)
            assert 0 <= idea.estimated_engagement <= 100 and 0 <= idea.trend_score <= 100
            assert idea.score_explanation["posts"] == 150
            assert "formula" in idea.score_explanation["estimated_engagement"]


def test_demo_weekends_do_better_and_ppv_earns_more_than_stories(demo):
    for creator in demo:
        zone = analytics.creator_zone(creator)
        rates = defaultdict(list)
        revenue = defaultdict(list)
        for post in Post.objects.filter(creator=creator):
            weekend = post.posted_at.astimezone(zone).weekday() >= 5
            rates[weekend].append((post.likes + post.comments) / max(post.views, 1))
            revenue[post.category].append(post.revenue)
        assert sum(rates[True]) / len(rates[True]) > sum(rates[False]) / len(rates[False])
        per_post = {category: sum(values, Decimal(0)) / len(values) for category, values in revenue.items()}
        assert per_post["ppv"] > per_post["story"]


def test_demo_history_shows_its_tag_effects_in_the_analytics(demo):
    for creator in demo:
        profile = NICHES[_niche(creator)]
        stats = {s.tag: s for s in analytics.tag_performance(creator=creator, days=180)}
        assert all(stats[tag].lift > 0.05 for tag in profile["lift"]), creator
        assert all(stats[tag].lift < 0 for tag in profile["hurt"]), creator
    trends = analytics.rising_trends(agency_id=demo[0].agency_id)
    assert {NICHES[_niche(c)]["rising"][0] for c in demo} & {t.tag for t in trends.tags}
