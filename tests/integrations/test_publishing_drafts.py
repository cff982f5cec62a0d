# ruff: noqa: F811 (pytest fixtures imported from publishing_support)
"""Draft posts awaiting approval (the weekly content plan proposes its week this way): the worker
leaves them alone, the calendar and the post page offer Approve, approving adds the media and
schedules the draft itself under the usual rules (then it publishes through the loopback fake),
discarding cancels it; the API's approve; roles and other tenants."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.core.errors import ApplicationError, ConflictError
from apps.integrations import publishing
from apps.integrations.models import ScheduledPost
from tests.integrations.publishing_support import (  # noqa: F401 (fixtures)
    connect,
    fake,
    publishing_server,
    run_until_settled,
    step,
)
from tests.integrations.test_publishing_pages import caption_generation, token_client

pytestmark = pytest.mark.django_db


def draft(world, platform="reddit", creator=None, **fields) -> ScheduledPost:
    fields.setdefault("scheduled_at", timezone.now() + timedelta(days=1))
    fields.setdefault("caption", "Golden hour set, who wants a peek? #goldenhour")
    return publishing.post_draft(membership=world.owner, creator=creator or world.creator, platform=platform,
                                 **fields)  # fmt: skip


def test_a_draft_needs_no_connection_and_the_worker_leaves_it_alone(world, fake):
    post = draft(world, title="Golden hour")
    assert post.status == "draft" and post.connection_id is None and post.next_attempt_at is None
    ScheduledPost.objects.filter(pk=post.pk).update(scheduled_at=timezone.now() - timedelta(minutes=1))
    assert post.pk not in publishing.posts_due()  # its time passing sends nothing
    assert step(post) == "skipped" and fake.calls("reddit") == []
    with pytest.raises(ApplicationError, match="TikTok, Instagram or Reddit"):
        draft(world, platform="onlyfans")
    with pytest.raises(ApplicationError, match="2200"):
        draft(world, platform="tiktok", caption="x" * 2201)


def test_the_same_generation_is_drafted_once(world):
    generation = caption_generation(world)
    first = draft(world, generation_id=generation.pk)
    again = draft(world, generation_id=generation.pk, caption="Another take")
    assert again.pk == first.pk and ScheduledPost.objects.count() == 1


def test_calendar_and_post_page_offer_approve_and_discard(world, client_for):
    post = draft(world, title="Golden hour <script>x</script>")
    client = client_for(world.owner)
    day = timezone.localtime(post.scheduled_at).date()
    calendar = client.get(f"/integrations/calendar/?date={day:%Y-%m-%d}").content.decode()
    assert "Awaiting approval" in calendar and f"/integrations/posts/new/?draft={post.pk}" in calendar
    assert "<script>x</script>" not in calendar
    page = client.get(f"/integrations/posts/{post.pk}/").content.decode()
    assert "Approve and schedule" in page and "Discard this draft" in page and "needs a Reddit connection" in page
    response = client.post(f"/integrations/posts/{post.pk}/retry/")  # a draft has no connection to retry on
    assert response.status_code == 302 and client.get(response["Location"]).status_code == 200
    response = client.post(f"/integrations/posts/{post.pk}/cancel/")
    assert response.status_code == 302
    post.refresh_from_db()
    assert post.status == "cancelled"
    with pytest.raises(ConflictError, match="Only a failed post can be retried"):
        publishing.post_retry(membership=world.owner, post=post)
    # The approval form of a draft discarded meanwhile (another tab) goes to the post's page instead.
    response = client.get(f"/integrations/posts/new/?draft={post.pk}")
    assert response.status_code == 302 and response["Location"] == f"/integrations/posts/{post.pk}/"


def test_approving_a_draft_adds_the_media_schedules_it_and_it_publishes(world, fake, client_for):
    world.creator.timezone = "Asia/Kathmandu"  # UTC+5:45: the form shows and reads the creator's clock
    world.creator.save(update_fields=["timezone"])
    post = draft(world, platform="instagram", caption="Golden hour set #goldenhour")
    client = client_for(world.owner)
    form_page = client.get(f"/integrations/posts/new/?draft={post.pk}").content.decode()
    local = timezone.localtime(post.scheduled_at, ZoneInfo("Asia/Kathmandu"))
    assert "Approve the draft" in form_page and "Golden hour set #goldenhour" in form_page
    assert local.strftime("%Y-%m-%dT%H:%M") in form_page
    assert f"proposed for {local:%A %d %b %H:%M} (Asia/Kathmandu)" in form_page
    form = {
        "creator": world.creator.pk, "platform": "instagram", "scheduled_at": local.strftime("%Y-%m-%dT%H:%M"),
        "caption": "Golden hour set #goldenhour", "media_type": "photo", "media_urls": "", "draft_id": post.pk,
    }  # fmt: skip
    response = client.post("/integrations/posts/new/", form)  # not connected yet: a form error, the draft kept
    assert response.status_code == 400 and "not connected to Instagram" in response.content.decode()
    post.refresh_from_db()
    assert post.status == "draft"
    connect(fake, world.creator, "instagram")
    response = client.post("/integrations/posts/new/", form)  # still no media
    assert response.status_code == 400 and "need a video or photos" in response.content.decode()
    response = client.post("/integrations/posts/new/", {**form, "media_urls": "https://cdn.example/a.jpg"})
    assert response.status_code == 302
    assert ScheduledPost.objects.count() == 1  # the draft itself was scheduled, not a copy
    post.refresh_from_db()
    assert post.status == "scheduled" and post.connection_id and post.media_urls == ["https://cdn.example/a.jpg"]
    assert abs((post.scheduled_at - local).total_seconds()) < 60
    response = client.post("/integrations/posts/new/", {**form, "media_urls": "https://cdn.example/b.jpg"})
    assert response.status_code == 400 and "no longer a draft" in response.content.decode()
    assert run_until_settled(post)[-1] == "published" and fake.calls("instagram")


def test_a_demo_draft_says_its_simulated_connection_cannot_publish(world, fake, client_for):
    connect(fake, world.creator, "instagram", is_simulated=True)
    post = draft(world, platform="instagram")
    with pytest.raises(ApplicationError, match="simulated demo one, which publishes nothing"):
        publishing.post_schedule(
            membership=world.owner, creator=world.creator, platform="instagram", scheduled_at=post.scheduled_at,
            caption=post.caption, media_type="photo", media_urls=["https://cdn.example/a.jpg"], draft=post,
        )  # fmt: skip
    post.refresh_from_db()
    assert post.status == "draft"


def test_approving_is_for_editors_of_the_agency(world, other_world, client_for):
    post = draft(world)
    assert client_for(world.viewer).get(f"/integrations/posts/new/?draft={post.pk}").status_code == 403
    assert client_for(other_world.owner).get(f"/integrations/posts/new/?draft={post.pk}").status_code == 404
    assert client_for(other_world.owner).get(f"/integrations/posts/{post.pk}/").status_code == 404


def test_api_approve(world, other_world, fake):
    connect(fake, world.creator, "reddit")
    post = draft(world, title="Golden hour")
    api = token_client(world.owner)
    url = f"/api/v1/integrations/posts/{post.pk}/approve"
    listed = api.get("/api/v1/integrations/posts?status=draft").json()["items"]
    assert [item["id"] for item in listed] == [post.pk]
    response = api.post(url, json.dumps({"media_urls": ["https://cdn.example/a.jpg"]}),
                        content_type="application/json")  # fmt: skip
    assert response.status_code == 400 and "subreddit" in response.content.decode()  # Reddit needs one
    response = api.post(url, json.dumps({"subreddit": "VelvetFans"}), content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == post.pk and body["status"] == "scheduled" and body["title"] == "Golden hour"
    response = api.post(url, json.dumps({"subreddit": "VelvetFans"}), content_type="application/json")
    assert response.status_code == 409 and "Only a draft" in response.json()["error"]["message"]
    foreign = token_client(other_world.owner).post(url, "{}", content_type="application/json")
    assert foreign.status_code == 404
    other = draft(world, title="Second")
    viewer = token_client(world.viewer).post(f"/api/v1/integrations/posts/{other.pk}/approve", "{}",
                                             content_type="application/json")  # fmt: skip
    assert viewer.status_code == 403
    world.creator.is_archived = True
    world.creator.save(update_fields=["is_archived"])
    response = api.post(f"/api/v1/integrations/posts/{other.pk}/approve", json.dumps({"subreddit": "VelvetFans"}),
                        content_type="application/json")  # fmt: skip
    assert response.status_code == 400 and "archived" in response.json()["error"]["message"]


def test_discarding_a_draft_approved_meanwhile_keeps_the_scheduled_post(world, fake, client_for):
    connect(fake, world.creator, "reddit")
    post = draft(world, title="Golden hour")
    client = client_for(world.owner)
    stale_page = client.get(f"/integrations/posts/{post.pk}/").content.decode()  # tab B, still a draft
    assert 'name="seen" value="draft"' in stale_page
    publishing.post_schedule(  # tab A approves it
        membership=world.owner, creator=world.creator, platform="reddit", scheduled_at=post.scheduled_at,
        caption=post.caption, title=post.title, subreddit="VelvetFans", draft=post,
    )  # fmt: skip
    response = client.post(f"/integrations/posts/{post.pk}/cancel/", {"seen": "draft"})  # tab B: Discard
    assert response.status_code == 302
    post.refresh_from_db()
    assert post.status == "scheduled"  # it still goes out
    page = client.get(response["Location"]).content.decode()
    assert "changed meanwhile: it is scheduled now, so nothing was cancelled" in page
    # Cancel, from a page that showed it scheduled, still cancels it.
    response = client.post(f"/integrations/posts/{post.pk}/cancel/", {"seen": "scheduled"})
    post.refresh_from_db()
    assert post.status == "cancelled"


def test_a_reddit_draft_needs_only_its_subreddit_to_be_approved(world, fake, client_for):
    connect(fake, world.creator, "reddit")
    post = draft(world, caption="", title="Golden hour set, who wants a peek?")  # as the content plan drafts it
    form_page = client_for(world.owner).get(f"/integrations/posts/new/?draft={post.pk}").content.decode()
    assert '<option value="text" selected>' in form_page  # a text post, not photos
    response = token_client(world.owner).post(f"/api/v1/integrations/posts/{post.pk}/approve",
                                              json.dumps({"subreddit": "VelvetFans"}),
                                              content_type="application/json")  # fmt: skip
    assert response.status_code == 200, response.content
    assert run_until_settled(post)[-1] == "published"
    sent = fake.state.reddit_posts[-1]
    assert sent["kind"] == "self" and sent["title"] == "Golden hour set, who wants a peek?" and sent["text"] == ""


def test_a_generation_already_drafted_is_not_drafted_again_once_dealt_with(world):
    generation = caption_generation(world)
    first = draft(world, generation_id=generation.pk)
    publishing.post_cancel(membership=world.owner, post=first)  # a member discarded it
    again = draft(world, generation_id=generation.pk)  # the plan step run again (a lost worker)
    assert again.pk == first.pk and again.status == "cancelled" and ScheduledPost.objects.count() == 1


def test_the_approval_page_of_an_archived_creators_draft_says_why_it_cannot_be_approved(world, client_for):
    post = draft(world, title="Golden hour")
    world.creator.is_archived = True
    world.creator.save(update_fields=["is_archived"])
    client = client_for(world.owner)
    response = client.get(f"/integrations/posts/new/?draft={post.pk}")
    assert response.status_code == 302 and response["Location"] == f"/integrations/posts/{post.pk}/"
    assert "is archived: restore the creator first" in client.get(response["Location"]).content.decode()
