"""Studio performance-data endpoints: trends, seasonality, caption analysis, posts and CSV import."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

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
