"""Studio performance-data endpoints: trends, seasonality, caption analysis, posts and CSV import."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from apps.accounts import services as account_services
from apps.studio.models import Post
from tests.studio.factories import PostFactory


@pytest.fixture
def api(world):
    _, secret = account_services.api_token_create(membership=world.manager, name="data")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_trends_seasonality_and_caption_analysis(api, world):
    PostFactory.create_batch(12, creator=world.creator, agency=world.agency)
    trends = api.get(f"/api/v1/studio/creators/{world.creator.pk}/trends")
    assert trends.status_code == 200 and {"tags", "categories"} <= set(trends.json())
    events = api.get(f"/api/v1/studio/creators/{world.creator.pk}/seasonality?days=366").json()["events"]
    assert any("Valentine" in e["name"] for e in events)
    assert api.get(f"/api/v1/studio/creators/{world.creator.pk}/seasonality?days=0").status_code == 422
    report = api.post(
        f"/api/v1/studio/creators/{world.creator.pk}/caption-analysis",
        {"caption": "New set tonight 🔥 want it? Unlock now", "platform": "instagram"},
        content_type="application/json",
    ).json()
    assert report["asks_question"] is True and report["has_cta"] is True and report["emoji_count"] == 1
    bad = api.post(
        f"/api/v1/studio/creators/{world.creator.pk}/caption-analysis",
        {"caption": "hi", "platform": "myspace"},
        content_type="application/json",
    )
    assert bad.status_code == 422 and "platform" in bad.json()["error"]["fields"]


def creator_in_another_day(creator) -> date:
    """Move the creator to a zone whose date differs from UTC's right now (UTC+14 from 10:00 UTC,
    UTC-11 before 11:00) and answer their date."""
    now = timezone.now()
    for name in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        today = now.astimezone(zoneinfo.ZoneInfo(name)).date()
        if today != now.astimezone(UTC).date():
            creator.timezone = name
            creator.save()
            return today
    raise AssertionError("some zone is always a day away from UTC")


def _counted_from(events, today: date) -> None:
    future = [e for e in events if date.fromisoformat(str(e["starts"])) > today]
    assert future  # payday weekends at least
    for event in events:
        days = (date.fromisoformat(str(event["starts"])) - today).days
        assert ("Running now." if days <= 0 else f"Starts in {days} days.") in event["reason"], (event, today)


def test_seasonality_counts_from_the_creators_own_date(api, world, client_for):
    """Not the server's (UTC) date, nor the member's: "Starts in 3 days" is three of the creator's days."""
    today = creator_in_another_day(world.creator)
    events = api.get(f"/api/v1/studio/creators/{world.creator.pk}/seasonality?days=60").json()["events"]
    _counted_from(events, today)
    from apps.studio import analytics

    world.manager.user.timezone = "UTC"
    world.manager.user.save()
    client = client_for(world.manager)
    session = client.session
    session["huntaze_creator_id"] = world.creator.pk
    session.save()
    page = client.get(reverse("studio:performance")).content.decode()
    expected = analytics.seasonality(creator=world.creator, on=today, horizon_days=45)[:8]
    _counted_from([{"starts": e.starts, "reason": e.reason} for e in expected], today)
    assert all(escape(e.reason) in page for e in expected)


def test_posts_import_and_list(api, world, django_capture_on_commit_callbacks):
    csv = (
        b"platform,posted_at,category,caption,tags,views,likes,comments,tips,ppv_unlocks,revenue,external_id\n"
        b"onlyfans,2026-10-01T20:00:00,photo,New set,cosplay beach,1000,120,8,5.00,0,5.00,a1\n"
        b"onlyfans,not-a-date,photo,Bad row,,10,1,0,0,0,0,a2\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/v1/studio/creators/{world.creator.pk}/posts/import",
            {"file": SimpleUploadedFile("posts.csv", csv, content_type="text/csv")},
        )
    report = response.json()
    assert response.status_code == 200 and report["created"] == 1 and report["failed"] == 1
    assert report["errors"][0]["row"] == 3 and report["errors"][0]["field"] == "posted_at"
    assert Post.objects.filter(creator=world.creator).count() == 1
    listing = api.get(f"/api/v1/studio/posts?creator_id={world.creator.pk}").json()
    assert listing["count"] == 1 and listing["items"][0]["tags"]
    missing = api.post(f"/api/v1/studio/creators/{world.creator.pk}/posts/import")
    assert missing.status_code == 400 and "file" in missing.json()["error"]["fields"]


def test_other_agency_creator_is_404(api, other_world):
    assert api.get(f"/api/v1/studio/creators/{other_world.creator.pk}/trends").status_code == 404
