# ruff: noqa: F811 (pytest fixtures imported from publishing_support)
"""A real Celery worker publishes a scheduled Instagram post at its time, polls it to the end,
and duplicated task messages never publish it twice."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.integrations import publishing
from apps.integrations.models import ScheduledPost
from apps.integrations.tasks import publish_post
from tests.conftest import build_world
from tests.integrations.publishing_support import connect, fake, publishing_server  # noqa: F401
from tests.processes import celery_worker_args, running


@pytest.mark.worker
def test_a_real_worker_publishes_once_at_the_time(transactional_db, fake):
    world = build_world("Publishers")
    connect(fake, world.creator, "instagram", token="ig-worker-token")
    env = {**fake.settings(), "INTEGRATIONS_PUBLISH_POLL_SECONDS": "0.5"}
    with running(celery_worker_args(), env=env):
        post = publishing.post_schedule(
            membership=world.owner, creator=world.creator, platform="instagram", caption="Worker post",
            scheduled_at=timezone.now() + timedelta(seconds=3), media_type="photo",
            media_urls=["https://cdn.example/a.jpg"],
        )  # fmt: skip
        for _ in range(3):  # duplicates, as a redelivered or re-swept message would be
            publish_post.delay(post.pk)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            post.refresh_from_db()
            if post.status in ("published", "failed"):
                break
            time.sleep(0.3)
        for _ in range(2):  # and late ones, after it was published
            publish_post.delay(post.pk)
        time.sleep(2)
    post.refresh_from_db()
    assert post.status == "published", post.last_error
    assert post.published_at >= post.scheduled_at  # not before its time
    assert post.attempts == 1 and post.platform_url.startswith("https://www.instagram.com/p/")
    assert len(fake.state.containers) == 1 and len(fake.state.media) == 1
    publishes = [c for c in fake.calls("instagram") if c["path"].endswith("/media_publish")]
    assert len(publishes) == 1
    assert ScheduledPost.objects.get(pk=post.pk).status == "published"
