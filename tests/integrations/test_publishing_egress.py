# ruff: noqa: F811 (pytest fixtures imported from publishing_support and tests/fakes/resolver.py)
"""Publishing leftovers of issue 14: a media download connects only to the address it checked
(one DNS resolution, private answers refused before any connection); a platform that accepts a
post without the id to follow it fails the post saying so; the demo's simulated posts fill the
calendar and never leave the server.

The platforms and the media host are tests/fakes/publishing_server.py on 127.0.0.1; host names
are scripted by tests/fakes/resolver.py, and a connection to any non-loopback address fails the
test."""

from __future__ import annotations

import json
import random

import pytest
from django.utils import timezone

from apps.core.registry import DemoContext
from apps.integrations import demo, publishing
from apps.integrations.models import Connection, ScheduledPost
from tests.fakes.resolver import loopback_only, resolver  # noqa: F401 (fixtures)
from tests.integrations.publishing_support import (  # noqa: F401 (fixtures)
    connect,
    fake,
    publishing_server,
    run_until_settled,
    soon,
    step,
)

pytestmark = pytest.mark.django_db
MEDIA_HOST = "media.rebind.test"


def tiktok_video(world, url: str) -> ScheduledPost:
    return publishing.post_schedule(
        membership=world.owner, creator=world.creator, platform="tiktok", scheduled_at=soon(), media_type="video",
        media_urls=[url],
    )  # fmt: skip


# --- Media downloads ------------------------------------------------------------------------------


def test_a_media_host_answering_a_private_address_is_refused_before_connecting(world, fake, settings, resolver):
    settings.INTEGRATIONS_PUBLISH_ALLOW_PRIVATE_MEDIA = False  # production
    fake.host_file("clip.mp4", b"\x00" * 1000)
    resolver.answer(MEDIA_HOST, "127.0.0.1")
    connect(fake, world.creator, "tiktok")
    post = tiktok_video(world, f"https://{MEDIA_HOST}:{fake.server.server_address[1]}/media/clip.mp4")
    assert step(post) == "failed"  # permanent: the address will not become allowed by waiting
    post.refresh_from_db()
    assert "The video's address is not allowed" in post.last_error and "private or internal" in post.last_error
    assert [c for c in fake.calls() if c["platform"] == "media"] == []
    assert resolver.lookups == [MEDIA_HOST]  # resolved once, by the connection that refused it
    assert not any(c["path"].endswith("/init/") for c in fake.calls("tiktok"))  # nothing started on TikTok


def test_a_media_download_resolves_once_and_connects_to_the_checked_address(world, fake, resolver):
    content = b"\x00\x00\x00\x18ftypmp42" * 500
    fake.host_file("small.mp4", content)
    resolver.answer(MEDIA_HOST, "127.0.0.1")  # private media allowed, as in development
    connect(fake, world.creator, "tiktok")
    port = fake.server.server_address[1]
    post = tiktok_video(world, f"http://{MEDIA_HOST}:{port}/media/small.mp4")
    assert run_until_settled(post)[-1] == "published"
    (download,) = [c for c in fake.calls() if c["platform"] == "media"]
    assert download["headers"]["host"] == f"{MEDIA_HOST}:{port}" and "authorization" not in download["headers"]
    assert resolver.lookups == [MEDIA_HOST]
    (upload,) = fake.state.uploads.values()
    assert b"".join(upload.received[i] for i in sorted(upload.received)) == content


# --- An accepted post without the id to follow it ---------------------------------------------------


def _tiktok_ok(data: dict) -> dict:
    return {"data": data, "error": {"code": "ok", "message": "", "log_id": "202612020000000000"}}


@pytest.mark.parametrize("platform", ["tiktok", "instagram"])
def test_an_answer_without_a_publish_id_fails_the_post_clearly(world, fake, platform):
    connect(fake, world.creator, platform)
    if platform == "tiktok":
        fake.fail_next("tiktok", 200, _tiktok_ok({"privacy_level_options": ["SELF_ONLY"]}))
        fake.fail_next("tiktok", 200, _tiktok_ok({}))  # the init, accepted, with no publish_id
        post = tiktok_video(world, f"{fake.base_url}/verified/clip.mp4")
        expected = "TikTok accepted the post but its answer had no publish_id"
    else:
        fake.fail_next("instagram", 200, {"data": [{"quota_usage": 0, "config": {"quota_total": 100}}]})
        fake.fail_next("instagram", 200, {})  # the container, with no id
        post = publishing.post_schedule(
            membership=world.owner, creator=world.creator, platform="instagram", scheduled_at=soon(),
            media_type="photo", media_urls=[f"{fake.base_url}/verified/a.jpg"], caption="Hi",
        )  # fmt: skip
        expected = "Instagram accepted the post but its answer had no media container id"
    assert step(post) == "failed"
    post.refresh_from_db()
    assert post.status == "failed" and post.next_attempt_at is None and post.attempts == 1
    assert expected in post.last_error and "before pressing Retry" in post.last_error
    assert "interrupted" not in post.last_error  # what it used to say, one lease later
    assert post.last_response  # the platform's answer, kept for the member to see
    calls = len(fake.calls(platform))
    assert step(post) == "skipped" and len(fake.calls(platform)) == calls  # nothing sent again


# --- The demo ----------------------------------------------------------------------------------------


def _seed(world) -> None:
    ctx = DemoContext(options={"creators": 2}, log=lambda message: None, rng=random.Random(7), agency=world.agency,
                      creators=[world.creator, world.other_creator])  # fmt: skip
    demo.seed(ctx)


def test_the_demo_fills_the_calendar_with_labelled_simulated_posts(world, client_for):
    _seed(world)
    posts = ScheduledPost.objects.filter(agency=world.agency)
    assert {"scheduled", "published", "failed"} <= set(posts.values_list("status", flat=True))
    assert all(post.connection.is_simulated and "Simulated demo" in (post.title or post.caption) for post in posts)
    assert posts.filter(status="scheduled", scheduled_at__gt=timezone.now()).count() >= 2
    week = client_for(world.owner).get("/integrations/calendar/?view=week").content.decode()
    month = client_for(world.owner).get("/integrations/calendar/").content.decode()
    page = week + month
    for status in ("Scheduled", "Published", "Failed"):
        assert f">{status}<" in page
    assert "No posts in this" not in week
    assert (
        "Simulated (demo)"
        in client_for(world.owner).get(f"/integrations/creators/{world.creator.pk}/").content.decode()
    )
    assert not Connection.objects.filter(creator=world.creator, platform="tiktok").exists()  # both states shown


def test_a_simulated_post_publishes_without_leaving_the_server(world, fake, client_for):
    _seed(world)
    post = ScheduledPost.objects.filter(agency=world.agency, status="scheduled").first()
    assert step(post) == "published"
    post.refresh_from_db()
    assert post.platform_post_id == f"sim_{post.pk}" and json.loads(post.last_response)["simulated"] is True
    failed = ScheduledPost.objects.get(agency=world.agency, status="failed")
    publishing.post_retry(membership=world.owner, post=failed)
    assert step(failed) == "published"
    assert fake.calls() == []  # nothing reached any platform
