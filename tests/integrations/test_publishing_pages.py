# ruff: noqa: F811 (pytest fixtures imported from publishing_support)
"""The publishing calendar, the schedule form (and the studio's "Schedule as post"), a post's page,
cancel and retry, and the API: roles, other tenants, escaping of the platform's answer, query counts."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone

from apps.accounts import services as account_services
from apps.integrations.models import ScheduledPost
from apps.studio.models import Generation
from tests.accounts.factories import CreatorFactory
from tests.integrations.publishing_support import connect, fake, publishing_server, soon, step  # noqa: F401

pytestmark = pytest.mark.django_db


def token_client(membership) -> Client:
    _, secret = account_services.api_token_create(membership=membership, name="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def make_post(world, creator=None, platform="reddit", status="scheduled", when=None, **fields) -> ScheduledPost:
    creator = creator or world.creator
    connection = creator.connections.filter(platform=platform).first()
    return ScheduledPost.objects.create(
        agency=world.agency, creator=creator, connection=connection, platform=platform, status=status,
        scheduled_at=when or timezone.now() + timedelta(hours=1), title=fields.pop("title", "Tonight"),
        subreddit="VelvetFans", **fields,
    )  # fmt: skip


def caption_generation(world, creator=None, text="Golden hour, golden you ✨") -> Generation:
    return Generation.objects.create(
        agency=world.agency, creator=creator or world.creator, type="caption", status="done",
        result={"variations": [{"caption": text}, {"caption": "Second take"}]},
    )  # fmt: skip


def test_calendar_shows_posts_with_the_platforms_answer_escaped_in_constant_queries(
    world, fake, client_for, django_assert_max_num_queries
):
    connect(fake, world.creator, "reddit")
    make_post(world, title="Scheduled one")
    make_post(world, status="published", title="Published one", platform_post_id="t3_abc",
              platform_url="https://www.reddit.com/r/VelvetFans/comments/abc/x/")  # fmt: skip
    make_post(world, status="failed", title="Failed one",
              last_error="Reddit refused (BAD_SR_NAME): <script>alert('x')</script>")  # fmt: skip
    client = client_for(world.owner)
    client.get("/integrations/calendar/")
    with django_assert_max_num_queries(12) as few:
        page = client.get("/integrations/calendar/").content.decode()
    assert "Scheduled one" in page and "Published one" in page and "Failed one" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "View on Reddit" in page and "Cancel" in page and "Retry" in page
    baseline = len(few.captured_queries)
    other = CreatorFactory(agency=world.agency, display_name="Extra")
    connect(fake, other, "reddit")
    for index in range(15):
        make_post(world, creator=other, title=f"Extra {index}")
    client.get("/integrations/calendar/")  # billing re-reads the plan once after creators change
    with django_assert_max_num_queries(baseline):
        page = client.get("/integrations/calendar/").content.decode()
    assert "Extra 14" in page


def test_calendar_filters_views_and_empty_state(world, fake, client_for):
    connect(fake, world.creator, "reddit")
    connect(fake, world.other_creator, "tiktok")
    make_post(world, title="Reddit post")
    make_post(world, creator=world.other_creator, platform="tiktok", title="TikTok post", media_type="video")
    client = client_for(world.manager)
    page = client.get(f"/integrations/calendar/?creator={world.creator.pk}").content.decode()
    assert "Reddit post" in page and "TikTok post" not in page
    page = client.get("/integrations/calendar/?platform=tiktok").content.decode()
    assert "TikTok post" in page and "Reddit post" not in page
    page = client.get("/integrations/calendar/?view=week").content.decode()
    assert "Week of" in page
    later = (timezone.localdate() + timedelta(days=70)).isoformat()
    page = client.get(f"/integrations/calendar/?date={later}").content.decode()
    assert "No posts in this month" in page and "Schedule a post" in page
    fragment = client.get("/integrations/calendar/?platform=reddit", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<div id="calendar-grid">') and "Reddit post" in fragment
    for junk in ("?date=not-a-date", "?creator=99999999999999999999999", "?platform=<x>", "?view=year"):
        assert client.get(f"/integrations/calendar/{junk}").status_code == 200
    # The month after December 9999 and the week after its last day are past what a date holds:
    # such a day shows this month, as an unreadable one does.
    this_month = f"{timezone.localdate():%B %Y}"
    for far in ("?date=9999-12-15", "?date=0001-01-01", "?view=week&date=9999-12-31"):
        response = client.get(f"/integrations/calendar/{far}")
        assert response.status_code == 200
        assert this_month in response.content.decode() or "Week of" in response.content.decode()


def test_chatter_sees_only_assigned_creators_posts_and_cannot_act(world, fake, client_for):
    connect(fake, world.creator, "reddit")
    connect(fake, world.other_creator, "reddit")
    mine = make_post(world, title="Assigned creator post")
    theirs = make_post(world, creator=world.other_creator, title="Unassigned creator post")
    client = client_for(world.chatter)
    page = client.get("/integrations/calendar/").content.decode()
    assert "Assigned creator post" in page and "Unassigned creator post" not in page
    assert client.get(f"/integrations/posts/{theirs.pk}/").status_code == 404
    assert client.post(f"/integrations/posts/{mine.pk}/cancel/").status_code == 403
    assert ScheduledPost.objects.get(pk=mine.pk).status == "scheduled"


def test_viewer_cannot_cancel_and_outsider_gets_404(world, other_world, fake, client_for):
    connect(fake, world.creator, "reddit")
    post = make_post(world)
    assert client_for(world.viewer).post(f"/integrations/posts/{post.pk}/cancel/").status_code == 403
    outsider = client_for(other_world.owner)
    assert outsider.get(f"/integrations/posts/{post.pk}/").status_code == 404
    assert outsider.post(f"/integrations/posts/{post.pk}/cancel/").status_code == 404
    assert "Tonight" not in outsider.get("/integrations/calendar/").content.decode()
    assert ScheduledPost.objects.get(pk=post.pk).status == "scheduled"


def test_cancel_and_retry_from_the_pages(world, fake, client_for):
    connect(fake, world.creator, "reddit")
    post = make_post(world)
    client = client_for(world.manager)
    response = client.post(f"/integrations/posts/{post.pk}/cancel/", follow=True)
    assert "The post is cancelled." in response.content.decode()
    assert ScheduledPost.objects.get(pk=post.pk).status == "cancelled"
    response = client.post(f"/integrations/posts/{post.pk}/retry/", follow=True)
    assert "Only a failed post can be retried" in response.content.decode()
    failed = make_post(world, status="failed", last_response='{"json":{"errors":[["X","<b>bad</b>","sr"]]}}')
    page = client.get(f"/integrations/posts/{failed.pk}/").content.decode()
    assert "&lt;b&gt;bad&lt;/b&gt;" in page and "<b>bad</b>" not in page
    client.post(f"/integrations/posts/{failed.pk}/retry/")
    failed.refresh_from_db()
    assert failed.status == "scheduled" and failed.next_attempt_at is not None


def test_schedule_form_from_a_studio_caption(world, other_world, fake, client_for):
    connect(fake, world.creator, "reddit")
    generation = caption_generation(world)
    client = client_for(world.owner)
    page = client.get(f"/integrations/posts/new/?generation={generation.pk}&variation=0").content.decode()
    assert "Golden hour, golden you" in page and "comes from the studio" in page
    foreign = caption_generation(other_world, text="Rival secret caption")
    page = client.get(f"/integrations/posts/new/?generation={foreign.pk}").content.decode()
    assert "Rival secret caption" not in page
    at = soon(90).astimezone(ZoneInfo(world.creator.timezone))  # the form reads the creator's zone
    form = {
        "creator": world.creator.pk, "platform": "reddit", "scheduled_at": at.strftime("%Y-%m-%dT%H:%M"),
        "caption": "", "title": "New set", "subreddit": "r/VelvetFans", "media_type": "text", "media_urls": "",
        "generation_id": generation.pk, "variation": 1,
    }  # fmt: skip
    response = client.post("/integrations/posts/new/", form)
    assert response.status_code == 302 and "/integrations/calendar/" in response["Location"]
    post = ScheduledPost.objects.get()
    assert post.caption == "Second take" and post.generation_id == generation.pk and post.subreddit == "VelvetFans"
    assert abs((post.scheduled_at - at).total_seconds()) < 60


def test_schedule_form_reads_the_time_in_the_creators_time_zone_and_shows_errors(world, fake, client_for):
    world.creator.timezone = "America/New_York"
    world.creator.save(update_fields=["timezone"])
    connect(fake, world.creator, "instagram")
    client = client_for(world.owner)
    local = (timezone.now() + timedelta(days=2)).astimezone(timezone.get_fixed_timezone(0)).replace(tzinfo=None)
    form = {"creator": world.creator.pk, "platform": "instagram", "scheduled_at": local.strftime("%Y-%m-%dT%H:%M"),
            "caption": "hi", "media_type": "photo", "media_urls": "https://cdn.example/a.jpg"}  # fmt: skip
    assert client.post("/integrations/posts/new/", form).status_code == 302
    post = ScheduledPost.objects.get()
    expected = local.replace(second=0, microsecond=0, tzinfo=ZoneInfo("America/New_York"))
    assert post.scheduled_at == expected
    bad = {**form, "media_urls": "", "scheduled_at": "2001-01-01T10:00"}
    response = client.post("/integrations/posts/new/", bad)
    assert response.status_code == 400 and "Choose a time in the future" in response.content.decode()
    response = client.post("/integrations/posts/new/", {**form, "media_urls": ""})
    assert response.status_code == 400 and "Instagram posts need a video or photos" in response.content.decode()
    response = client.post("/integrations/posts/new/", {**form, "creator": "x", "platform": "myspace"})
    assert response.status_code == 400
    assert client_for(world.viewer).get("/integrations/posts/new/").status_code == 403
    assert ScheduledPost.objects.count() == 1


def test_studio_caption_offers_schedule_as_post(world):
    generation = caption_generation(world)
    html = render_to_string("studio/partials/result_body.html", {"generation": generation})
    assert f"/integrations/posts/new/?generation={generation.pk}&amp;variation=1" in html


# --- API ----------------------------------------------------------------------------------------------


def test_api_create_list_cancel_and_retry(world, fake):
    connect(fake, world.creator, "reddit")
    generation = caption_generation(world)
    api = token_client(world.owner)
    body = {"creator_id": world.creator.pk, "platform": "reddit", "scheduled_at": soon(30).isoformat(),
            "title": "New set", "subreddit": "VelvetFans", "generation_id": generation.pk}  # fmt: skip
    response = api.post("/api/v1/integrations/posts", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["caption"] == "Golden hour, golden you ✨" and created["status"] == "scheduled"
    listed = api.get(f"/api/v1/integrations/posts?creator_id={world.creator.pk}&status=scheduled").json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert api.get("/api/v1/integrations/posts?platform=tiktok").json()["items"] == []
    response = api.post(f"/api/v1/integrations/posts/{created['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    response = api.post(f"/api/v1/integrations/posts/{created['id']}/cancel")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    post = ScheduledPost.objects.get(pk=created["id"])
    ScheduledPost.objects.filter(pk=post.pk).update(status="failed")
    response = api.post(f"/api/v1/integrations/posts/{created['id']}/retry")
    assert response.status_code == 200 and response.json()["status"] == "scheduled"


def test_api_bad_input_is_a_clear_4xx(world, fake):
    connect(fake, world.creator, "tiktok")
    api = token_client(world.owner)
    base = {"creator_id": world.creator.pk, "platform": "tiktok", "scheduled_at": soon().isoformat(),
            "media_type": "video", "media_urls": ["https://cdn.example/v.mp4"]}  # fmt: skip

    def post(**changes):
        return api.post("/api/v1/integrations/posts", json.dumps({**base, **changes}), content_type="application/json")

    assert post(platform="onlyfans").status_code == 422
    response = post(scheduled_at=(timezone.now() - timedelta(hours=1)).isoformat())
    assert response.status_code == 400 and response.json()["error"]["fields"] == {
        "scheduled_at": ["Choose a time in the future."]
    }
    response = post(media_urls=[])
    assert response.status_code == 400 and "media_urls" in response.json()["error"]["fields"]
    response = post(platform="reddit")
    assert response.status_code == 400 and "not connected to Reddit" in response.json()["error"]["message"]
    assert post(generation_id=987654321).status_code == 404
    assert post(scheduled_at="2026-13-45").status_code == 422
    assert post(scheduled_at="0001-01-01T00:00:00+05:00").status_code == 400  # no OverflowError (500)
    assert post(scheduled_at=(timezone.now() + timedelta(days=400)).isoformat()).status_code == 400
    assert post(scheduled_at="2026-06-01T10:00:00").status_code == 400  # no zone: ambiguous
    assert api.get("/api/v1/integrations/posts?start=0001-01-01T00:00:00%2B05:00").status_code == 400
    assert ScheduledPost.objects.count() == 0
    assert post().status_code == 201


def test_api_roles_and_other_tenants(world, other_world, fake):
    connect(fake, world.creator, "reddit")
    post = make_post(world)
    body = {"creator_id": world.creator.pk, "platform": "reddit", "scheduled_at": soon().isoformat(),
            "title": "t", "subreddit": "VelvetFans", "caption": "c"}  # fmt: skip
    viewer = token_client(world.viewer)
    assert viewer.get("/api/v1/integrations/posts").json()["count"] == 1
    response = viewer.post("/api/v1/integrations/posts", json.dumps(body), content_type="application/json")
    assert response.status_code == 403
    assert viewer.post(f"/api/v1/integrations/posts/{post.pk}/cancel").status_code == 403
    outsider = token_client(other_world.owner)
    assert outsider.get(f"/api/v1/integrations/posts/{post.pk}").status_code == 404
    assert outsider.post(f"/api/v1/integrations/posts/{post.pk}/cancel").status_code == 404
    assert outsider.get("/api/v1/integrations/posts").json()["items"] == []
    response = outsider.post("/api/v1/integrations/posts", json.dumps(body), content_type="application/json")
    assert response.status_code == 404
    assert ScheduledPost.objects.get(pk=post.pk).status == "scheduled" and ScheduledPost.objects.count() == 1


def test_published_post_reaches_the_calendar_end_to_end(world, fake, client_for):
    connect(fake, world.creator, "reddit")
    api = token_client(world.owner)
    body = {"creator_id": world.creator.pk, "platform": "reddit", "scheduled_at": soon().isoformat(),
            "title": "Launch day", "subreddit": "VelvetFans", "caption": "It's here"}  # fmt: skip
    created = api.post("/api/v1/integrations/posts", json.dumps(body), content_type="application/json").json()
    assert step(ScheduledPost.objects.get(pk=created["id"])) == "published"
    detail = api.get(f"/api/v1/integrations/posts/{created['id']}").json()
    assert detail["status"] == "published" and detail["platform_post_id"].startswith("t3_")
    page = client_for(world.owner).get(f"/integrations/posts/{created['id']}/").content.decode()
    assert "Published" in page and detail["platform_url"] in page


def test_a_link_to_the_post_that_is_not_https_is_not_kept_or_rendered(world, fake, client_for):
    connect(fake, world.creator, "reddit")
    fake.state.reddit_post_url = "javascript:alert(document.cookie)"
    api = token_client(world.owner)
    body = {"creator_id": world.creator.pk, "platform": "reddit", "scheduled_at": soon().isoformat(),
            "title": "Launch day", "subreddit": "VelvetFans", "caption": "It's here"}  # fmt: skip
    created = api.post("/api/v1/integrations/posts", json.dumps(body), content_type="application/json").json()
    assert step(ScheduledPost.objects.get(pk=created["id"])) == "published"
    assert api.get(f"/api/v1/integrations/posts/{created['id']}").json()["platform_url"] == ""
    for page in (f"/integrations/posts/{created['id']}/", "/integrations/calendar/"):
        html = client_for(world.owner).get(page).content.decode()
        # The platform's raw answer is shown escaped in its <pre>; no link is made of it.
        assert 'href="javascript:' not in html and "View on Reddit" not in html
    # One stored before the scheme was checked is not made a link either.
    ScheduledPost.objects.filter(pk=created["id"]).update(platform_url="javascript:alert(1)")
    for page in (f"/integrations/posts/{created['id']}/", "/integrations/calendar/"):
        assert 'href="javascript:' not in client_for(world.owner).get(page).content.decode()
