# ruff: noqa: F811 (pytest fixtures imported from publishing_support)
"""Publishing to TikTok, Instagram and Reddit: scheduling rules, the worker's step (claim, start,
poll, record), retryable and permanent errors, revoked tokens, TikTok's chunked upload and its
init limit, all through the loopback fakes of the platforms' publishing APIs."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection as db_connection
from django.utils import timezone

from apps.core.errors import ApplicationError, ConflictError
from apps.integrations import publishing, tasks
from apps.integrations.models import Connection, ScheduledPost
from apps.notifications.models import Notification
from tests.integrations.publishing_support import (  # noqa: F401 (fixtures)
    connect,
    fake,
    make_due,
    publishing_server,
    run_until_settled,
    soon,
    step,
)

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


def schedule(world, platform: str, **fields) -> ScheduledPost:
    fields.setdefault("scheduled_at", soon())
    return publishing.post_schedule(membership=world.owner, creator=world.creator, platform=platform, **fields)


def reddit_post(world, **fields) -> ScheduledPost:
    fields = {"title": "New set tonight", "subreddit": "VelvetFans", "caption": "Link in bio 💋", **fields}
    return schedule(world, "reddit", **fields)


# --- Scheduling rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "fields", "field", "message"),
    [
        ("reddit", {"scheduled_at": timezone.now() - timedelta(minutes=1)}, "scheduled_at", "in the future"),
        ("tiktok", {"caption": "x" * 2201, "media_type": "video", "media_urls": ["https://cdn.example/v.mp4"]},
         "caption", "2200"),
        ("instagram", {"caption": "hello", "media_type": "text"}, "media_urls", "need a video or photos"),
        ("tiktok", {"media_type": "video", "media_urls": []}, "media_urls", "need a video or photos"),
        ("instagram", {"media_type": "photo", "media_urls": ["http://cdn.example/a.jpg"]}, "media_urls", "https://"),
        ("instagram", {"media_type": "photo", "media_urls": ["https://cdn.example/a.jpg"], "caption": "#a " * 31},
         "caption", "30 hashtags"),
        ("reddit", {"title": "", "subreddit": "VelvetFans", "caption": "hi"}, "title", "need a title"),
        ("reddit", {"title": "Hi", "subreddit": "no spaces", "caption": "hi"}, "subreddit", "subreddit"),
        ("reddit", {"title": "x" * 301, "subreddit": "VelvetFans", "caption": "hi"}, "title", "300"),
        ("tiktok", {"media_type": "photo", "media_urls": ["https://cdn.example/a.jpg"], "title": "t" * 91},
         "title", "90"),
    ],
)  # fmt: skip
def test_schedule_refuses_what_the_platform_would_refuse(world, fake, settings, platform, fields, field, message):
    settings.INTEGRATIONS_PUBLISH_ALLOW_PRIVATE_MEDIA = False  # production: https only
    connect(fake, world.creator, platform)
    with pytest.raises(ApplicationError) as error:
        schedule(world, platform, **fields)
    assert error.value.field == field and message in error.value.message
    assert not ScheduledPost.objects.exists()


def test_schedule_needs_a_live_connection_with_the_publishing_scope(world, fake):
    with pytest.raises(ApplicationError, match="not connected to Reddit"):
        reddit_post(world)
    connection = connect(fake, world.creator, "reddit", scopes=["identity"])
    with pytest.raises(ApplicationError, match=r"did not grant publishing \(submit\)"):
        reddit_post(world)
    Connection.objects.filter(pk=connection.pk).update(scopes=["identity", "submit"], status="needs_reconnect")
    with pytest.raises(ApplicationError, match="not connected"):
        reddit_post(world)
    Connection.objects.filter(pk=connection.pk).update(status="connected")
    post = reddit_post(world)
    assert post.status == "scheduled" and post.connection_id == connection.pk and post.attempts == 0


def test_viewers_and_chatters_cannot_schedule(world, fake):
    connect(fake, world.creator, "reddit")
    for member in (world.viewer, world.chatter):
        with pytest.raises(PermissionDenied) as error:
            publishing.post_schedule(
                membership=member, creator=world.creator, platform="reddit", scheduled_at=soon(),
                title="t", subreddit="VelvetFans", caption="c",
            )  # fmt: skip
        assert "not allow" in str(error.value)
    assert not ScheduledPost.objects.exists()


def test_a_post_waits_for_its_time(world, fake):
    connect(fake, world.creator, "reddit")
    post = reddit_post(world)
    assert publishing.post_publish(post_id=post.pk) == "skipped"
    assert publishing.posts_due() == []
    assert fake.calls("reddit") == []
    make_due(post)
    assert publishing.posts_due() == [post.pk]


# --- Reddit ---------------------------------------------------------------------------------------


def test_reddit_self_post_is_submitted_form_encoded_and_its_answer_recorded(world, fake):
    connect(fake, world.creator, "reddit", token="reddit-token-1")
    post = reddit_post(world)
    assert step(post) == "published"
    post.refresh_from_db()
    (call,) = fake.calls("reddit")
    assert call["path"] == "/reddit/api/submit" and call["headers"]["authorization"] == "bearer reddit-token-1"
    assert call["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert "huntaze" in call["headers"]["user-agent"]
    form = dict(pair.split("=", 1) for pair in call["body"].decode().split("&"))
    assert form["sr"] == "VelvetFans" and form["kind"] == "self" and form["api_type"] == "json"
    assert post.status == "published" and post.platform_post_id.startswith("t3_") and post.published_at
    assert post.platform_url.startswith("https://www.reddit.com/r/VelvetFans/comments/")
    assert json.loads(post.last_response)["json"]["data"]["name"] == post.platform_post_id
    assert post.attempts == 1 and post.next_attempt_at is None
    assert step(post) == "skipped" and len(fake.calls("reddit")) == 1  # never twice


def test_reddit_media_url_becomes_a_link_post(world, fake):
    connect(fake, world.creator, "reddit")
    post = reddit_post(world, media_urls=["https://cdn.example/set.jpg"])
    assert step(post) == "published"
    assert fake.state.reddit_posts[0]["kind"] == "link"
    assert fake.state.reddit_posts[0]["url"] == "https://cdn.example/set.jpg"


def test_reddit_refusal_fails_the_post_with_the_platforms_words(world, fake):
    connect(fake, world.creator, "reddit")
    post = reddit_post(world, subreddit="doesnotexist")
    assert step(post) == "failed"
    post.refresh_from_db()
    assert post.status == "failed" and "SUBREDDIT_NOEXIST" in post.last_error
    assert "that community doesn't exist" in post.last_response
    assert post.next_attempt_at is None and publishing.posts_due() == []


def test_reddit_ratelimit_is_retried_after_the_wait_it_names(world, fake):
    connect(fake, world.creator, "reddit")
    fake.fail_next("reddit", 200, {"json": {"errors": [
        ["RATELIMIT", "you are doing that too much. try again in 5 minutes.", "ratelimit"]]}})  # fmt: skip
    post = reddit_post(world)
    before = timezone.now()
    assert step(post) == "retry"
    post.refresh_from_db()
    assert post.status == "scheduled" and "RATELIMIT" in post.last_error
    assert before + timedelta(seconds=299) <= post.next_attempt_at <= timezone.now() + timedelta(seconds=301)
    assert step(post) == "published"


def test_server_errors_are_retried_then_given_up(world, fake, settings):
    settings.INTEGRATIONS_PUBLISH_MAX_ATTEMPTS = 2
    connect(fake, world.creator, "reddit")
    fake.fail_next("reddit", 503, {"message": "Service Unavailable", "error": 503}, {"Retry-After": "30"})
    fake.fail_next("reddit", 502, {"message": "Bad Gateway", "error": 502})
    post = reddit_post(world)
    assert step(post) == "retry"
    post.refresh_from_db()
    assert post.status == "scheduled" and post.next_attempt_at >= timezone.now() + timedelta(seconds=29)
    assert step(post) == "failed"
    post.refresh_from_db()
    assert post.status == "failed" and post.attempts == 2 and "HTTP 502" in post.last_error


def test_revoked_token_fails_the_post_marks_the_connection_and_tells_the_owners_once(world, fake):
    connection = connect(fake, world.creator, "reddit", token="reddit-revoked")
    first, second = reddit_post(world), reddit_post(world, title="Second")
    fake.revoke("reddit-revoked")
    assert step(first) == "failed"
    first.refresh_from_db()
    connection.refresh_from_db()
    assert first.status == "failed" and "401" in first.last_error
    assert connection.status == "needs_reconnect" and "reconnect" in connection.last_error
    notes = Notification.objects.filter(agency=world.agency)
    assert list(notes.values_list("user_id", flat=True)) == [world.owner.user_id]
    assert "Reconnect" in notes[0].title
    calls = len(fake.calls("reddit"))
    assert step(second) == "failed"  # not sent: the connection needs reconnecting
    second.refresh_from_db()
    assert "reconnect" in second.last_error and len(fake.calls("reddit")) == calls
    assert notes.count() == 1
    with pytest.raises(ApplicationError, match="reconnect it first"):
        publishing.post_retry(membership=world.owner, post=second)


# --- TikTok ---------------------------------------------------------------------------------------


def test_tiktok_video_pulled_from_a_verified_url(world, fake):
    connect(fake, world.creator, "tiktok", token="tt-token")
    url = f"{fake.base_url}/verified/clip.mp4"
    post = schedule(world, "tiktok", caption="New drop #fyp", media_type="video", media_urls=[url])
    assert step(post) == "processing"
    post.refresh_from_db()
    assert post.status == "publishing" and post.publish_id.startswith("v_pub_url~")
    paths = [c["path"] for c in fake.calls("tiktok")]
    assert paths == ["/tiktok/v2/post/publish/creator_info/query/", "/tiktok/v2/post/publish/video/init/"]
    init = json.loads(fake.calls("tiktok")[1]["body"])
    assert init["source_info"] == {"source": "PULL_FROM_URL", "video_url": url}
    assert init["post_info"]["title"] == "New drop #fyp"
    assert init["post_info"]["privacy_level"] == "PUBLIC_TO_EVERYONE"
    assert init["post_info"]["disable_stitch"] is True  # the creator's setting from creator_info
    assert fake.calls("tiktok")[1]["headers"]["authorization"] == "Bearer tt-token"
    assert step(post) == "processing"  # PROCESSING_DOWNLOAD
    assert step(post) == "published"
    post.refresh_from_db()
    assert post.status == "published" and post.platform_post_id == "7312345678901234567"
    assert "PUBLISH_COMPLETE" in post.last_response and post.polls == 2


def test_tiktok_private_only_account_publishes_with_the_publish_id(world, fake):
    fake.state.privacy_level_options = ["SELF_ONLY"]
    connect(fake, world.creator, "tiktok")
    post = schedule(world, "tiktok", media_type="video", media_urls=[f"{fake.base_url}/verified/a.mp4"])
    assert run_until_settled(post)[-1] == "published"
    post.refresh_from_db()
    assert post.platform_post_id == post.publish_id  # private posts get no public id
    assert json.loads(fake.calls("tiktok")[1]["body"])["post_info"]["privacy_level"] == "SELF_ONLY"


def test_tiktok_video_elsewhere_is_uploaded_in_chunks_with_content_range(world, fake, settings):
    settings.TIKTOK_UPLOAD_CHUNK_BYTES = 5 * MB
    content = bytes(range(256)) * (11 * MB // 256)  # 11 MB: two chunks, the last one 6 MB
    url = fake.host_file("big.mp4", content)
    connect(fake, world.creator, "tiktok")
    post = schedule(world, "tiktok", media_type="video", media_urls=[url])
    assert run_until_settled(post)[-1] == "published"
    init = json.loads(next(c for c in fake.calls("tiktok") if c["path"].endswith("/video/init/"))["body"])
    assert init["source_info"] == {
        "source": "FILE_UPLOAD", "video_size": len(content), "chunk_size": 5 * MB, "total_chunk_count": 2,
    }  # fmt: skip
    puts = [c for c in fake.calls("tiktok") if c["method"] == "PUT"]
    assert [c["headers"]["content-range"] for c in puts] == [
        f"bytes 0-{5 * MB - 1}/{len(content)}",
        f"bytes {5 * MB}-{len(content) - 1}/{len(content)}",
    ]
    assert all(c["headers"]["content-type"] == "video/mp4" and "authorization" not in c["headers"] for c in puts)
    (upload,) = fake.state.uploads.values()
    assert b"".join(upload.received[i] for i in sorted(upload.received)) == content


def test_tiktok_small_video_is_uploaded_whole(world, fake):
    url = fake.host_file("small.mp4", b"\x00\x00\x00\x18ftypmp42" * 1000)
    connect(fake, world.creator, "tiktok")
    post = schedule(world, "tiktok", media_type="video", media_urls=[url])
    assert run_until_settled(post)[-1] == "published"
    (put,) = [c for c in fake.calls("tiktok") if c["method"] == "PUT"]
    assert put["headers"]["content-range"] == "bytes 0-11999/12000"


def test_tiktok_photo_post(world, fake):
    connect(fake, world.creator, "tiktok")
    photos = [f"{fake.base_url}/verified/{n}.jpg" for n in range(3)]
    post = schedule(world, "tiktok", title="Beach day", caption="Sun's out", media_type="photo", media_urls=photos)
    assert run_until_settled(post)[-1] == "published"
    init = json.loads(next(c for c in fake.calls("tiktok") if c["path"].endswith("/content/init/"))["body"])
    assert init["media_type"] == "PHOTO" and init["post_mode"] == "DIRECT_POST"
    assert init["source_info"] == {"source": "PULL_FROM_URL", "photo_cover_index": 0, "photo_images": photos}
    assert init["post_info"]["title"] == "Beach day" and init["post_info"]["description"] == "Sun's out"


def test_tiktok_processing_failure_is_recorded(world, fake):
    fake.state.tiktok_fail_reason = "duration_check_failed"
    connect(fake, world.creator, "tiktok")
    post = schedule(world, "tiktok", media_type="video", media_urls=[f"{fake.base_url}/verified/a.mp4"])
    assert run_until_settled(post)[-1] == "failed"
    post.refresh_from_db()
    assert "duration_check_failed" in post.last_error and '"status":"FAILED"' in post.last_response


def test_tiktok_unverified_url_is_refused_permanently(world, fake, settings):
    settings.TIKTOK_PULL_FROM_URL_PREFIXES = ["https://cdn.example/"]  # we believe it, TikTok does not
    connect(fake, world.creator, "tiktok")
    post = schedule(world, "tiktok", media_type="video", media_urls=["https://cdn.example/a.mp4"])
    assert step(post) == "failed"
    post.refresh_from_db()
    assert "url_ownership_unverified" in post.last_error


def test_tiktok_inits_stay_under_six_a_minute_per_token(world, fake):
    connect(fake, world.creator, "tiktok")
    url = f"{fake.base_url}/verified/a.mp4"
    posts = [schedule(world, "tiktok", media_type="video", media_urls=[url]) for _ in range(4)]
    assert [step(post) for post in posts] == ["processing", "processing", "processing", "retry"]
    held = ScheduledPost.objects.get(pk=posts[3].pk)
    assert held.status == "scheduled" and "6 post starts a minute" in held.last_error
    assert timezone.now() + timedelta(seconds=5) < held.next_attempt_at <= timezone.now() + timedelta(seconds=21)
    inits = [c for c in fake.calls("tiktok") if c["path"].endswith("/init/")]
    assert len(inits) == 3  # the fourth never reached TikTok, so TikTok never answered 429


def test_tiktok_rate_limit_answer_is_retried(world, fake):
    connect(fake, world.creator, "tiktok")
    fake.fail_next("tiktok", 429, {"data": {}, "error": {"code": "rate_limit_exceeded", "message": "slow down",
                                                          "log_id": "x"}})  # fmt: skip
    post = schedule(world, "tiktok", media_type="video", media_urls=[f"{fake.base_url}/verified/a.mp4"])
    assert step(post) == "retry"
    assert run_until_settled(post)[-1] == "published"


def test_tiktok_invalid_token_marks_the_connection(world, fake):
    connection = connect(fake, world.creator, "tiktok", token="tt-old")
    fake.revoke("tt-old")
    post = schedule(world, "tiktok", media_type="video", media_urls=[f"{fake.base_url}/verified/a.mp4"])
    assert step(post) == "failed"
    connection.refresh_from_db()
    assert connection.status == "needs_reconnect"
    assert "access_token_invalid" in ScheduledPost.objects.get(pk=post.pk).last_error


# --- Instagram ------------------------------------------------------------------------------------


def test_instagram_image_container_then_publish(world, fake):
    connect(fake, world.creator, "instagram", token="ig-token")
    post = schedule(world, "instagram", caption="Golden hour ✨", media_type="photo",
                    media_urls=["https://cdn.example/a.jpg"])  # fmt: skip
    assert run_until_settled(post) == ["processing", "processing", "published"]
    post.refresh_from_db()
    calls = [(c["method"], c["path"].removeprefix("/instagram/v22.0")) for c in fake.calls("instagram")]
    container = post.publish_id
    assert calls == [
        ("GET", "/17841400000000001/content_publishing_limit"),
        ("POST", "/17841400000000001/media"),
        ("GET", f"/{container}"),
        ("GET", f"/{container}"),
        ("POST", "/17841400000000001/media_publish"),
        ("GET", f"/{post.platform_post_id}"),
    ]
    create = fake.calls("instagram")[1]
    assert dict(p.split("=", 1) for p in create["body"].decode().split("&"))["image_url"].startswith("https%3A")
    assert all(c["headers"]["authorization"] == "Bearer ig-token" for c in fake.calls("instagram"))
    assert all("access_token" not in c["query"] for c in fake.calls("instagram"))  # never in a URL
    assert post.status == "published" and post.platform_url.startswith("https://www.instagram.com/p/")


def test_instagram_carousel_and_reel(world, fake):
    connect(fake, world.creator, "instagram")
    carousel = schedule(world, "instagram", media_type="photo",
                        media_urls=[f"https://cdn.example/{n}.jpg" for n in range(3)])  # fmt: skip
    reel = schedule(world, "instagram", media_type="video", media_urls=["https://cdn.example/r.mp4"])
    assert run_until_settled(carousel)[-1] == "published"
    assert run_until_settled(reel)[-1] == "published"
    params = [c["params"] for c in fake.state.containers.values()]
    assert [p.get("is_carousel_item") for p in params[:3]] == ["true"] * 3
    assert params[3]["media_type"] == "CAROUSEL" and len(params[3]["children"].split(",")) == 3
    assert params[4]["media_type"] == "REELS" and params[4]["video_url"] == "https://cdn.example/r.mp4"


def test_instagram_publishing_limit_used_up_waits_an_hour(world, fake):
    fake.state.publishing_quota = 100
    connect(fake, world.creator, "instagram")
    post = schedule(world, "instagram", media_type="photo", media_urls=["https://cdn.example/a.jpg"])
    assert step(post) == "retry"
    post.refresh_from_db()
    assert "100 of 100" in post.last_error and post.next_attempt_at > timezone.now() + timedelta(minutes=59)
    assert fake.state.containers == {}


def test_instagram_container_error_fails_the_post(world, fake):
    fake.state.instagram_final = "ERROR"
    connect(fake, world.creator, "instagram")
    post = schedule(world, "instagram", media_type="video", media_urls=["https://cdn.example/r.mp4"])
    assert run_until_settled(post) == ["processing", "failed"]
    assert "could not process the media" in ScheduledPost.objects.get(pk=post.pk).last_error


def test_instagram_expired_token_marks_the_connection(world, fake):
    connection = connect(fake, world.creator, "instagram", token="ig-old")
    fake.revoke("ig-old")
    post = schedule(world, "instagram", media_type="photo", media_urls=["https://cdn.example/a.jpg"])
    assert step(post) == "failed"
    connection.refresh_from_db()
    assert connection.status == "needs_reconnect" and "190" in ScheduledPost.objects.get(pk=post.pk).last_error


def test_polling_gives_up_after_the_limit(world, fake, settings):
    settings.INTEGRATIONS_PUBLISH_MAX_POLLS = 2
    fake.state.processing_polls = 100
    connect(fake, world.creator, "instagram")
    post = schedule(world, "instagram", media_type="photo", media_urls=["https://cdn.example/a.jpg"])
    assert run_until_settled(post) == ["processing", "processing", "failed"]
    assert "still processing" in ScheduledPost.objects.get(pk=post.pk).last_error


# --- Claims, leases, cancel and retry -----------------------------------------------------------------


def test_an_interrupted_start_is_not_sent_again(world, fake):
    connect(fake, world.creator, "reddit")
    post = reddit_post(world)
    make_due(post)
    # A worker claimed the post and died before recording anything.
    ScheduledPost.objects.filter(pk=post.pk).update(status="publishing", attempts=1)
    assert publishing.post_publish(post_id=post.pk) == "failed"
    post.refresh_from_db()
    assert post.status == "failed" and "outcome is unknown" in post.last_error
    assert fake.calls("reddit") == []


def test_a_claimed_post_is_not_claimed_again(world, fake):
    connect(fake, world.creator, "reddit")
    post = reddit_post(world)
    make_due(post)
    lease_end = timezone.now() + timedelta(minutes=10)
    ScheduledPost.objects.filter(pk=post.pk).update(status="publishing", next_attempt_at=lease_end)
    assert publishing.post_publish(post_id=post.pk) == "skipped"
    assert fake.calls("reddit") == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_publish_once(world, fake):
    connect(fake, world.creator, "reddit")
    post = reddit_post(world)
    make_due(post)
    results: list[str] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        try:
            results.append(publishing.post_publish(post_id=post.pk))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["published", "skipped"]
    assert len(fake.state.reddit_posts) == 1


def test_cancel_and_retry(world, fake):
    connect(fake, world.creator, "reddit")
    post = reddit_post(world)
    cancelled = publishing.post_cancel(membership=world.manager, post=post)
    assert cancelled.status == "cancelled" and step(post) == "skipped" and fake.calls("reddit") == []
    with pytest.raises(ConflictError):
        publishing.post_cancel(membership=world.manager, post=post)
    failing = reddit_post(world, subreddit="doesnotexist")
    assert step(failing) == "failed"
    with pytest.raises(PermissionDenied):
        publishing.post_retry(membership=world.viewer, post=failing)
    ScheduledPost.objects.filter(pk=failing.pk).update(subreddit="VelvetFans")
    failing.refresh_from_db()
    retried = publishing.post_retry(membership=world.owner, post=failing)
    assert retried.status == "scheduled" and retried.attempts == 0 and retried.last_error == ""
    assert step(retried) == "published"
    with pytest.raises(ConflictError):
        publishing.post_retry(membership=world.owner, post=retried)


def test_beat_sweep_runs_due_posts_through_the_tasks(world, fake, eager_celery, django_capture_on_commit_callbacks):
    connect(fake, world.creator, "instagram")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        post = schedule(world, "instagram", media_type="photo", media_urls=["https://cdn.example/a.jpg"])
    assert len(callbacks) == 1  # queued for its time at once (within the hour)
    post.refresh_from_db()
    assert post.status == "scheduled"  # the early message found it not due and left it
    for expected in ("processing", "processing", "published"):
        make_due(post)
        assert tasks.publish_due_posts() == 1
        post.refresh_from_db()
        assert post.status == ("published" if expected == "published" else "publishing")
    assert tasks.publish_due_posts() == 0
