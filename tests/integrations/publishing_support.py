"""Fixtures and helpers of the publishing tests: the loopback publishing fake, connections whose
tokens it knows, and driving the worker's step until a post settles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.integrations.models import Connection, ScheduledPost
from apps.integrations.publishing import post_publish
from tests.fakes.publishing_server import FakePublishing

SCOPES = {
    "tiktok": ["user.info.basic", "video.upload", "video.publish"],
    "instagram": ["instagram_business_basic", "instagram_business_content_publish"],
    "reddit": ["identity", "submit"],
}


@pytest.fixture(scope="session")
def publishing_server():
    server = FakePublishing().start()
    yield server
    server.stop()


@pytest.fixture
def fake(publishing_server, settings):
    """Every publishing API pointed at the loopback fake; quick polls and retries."""
    publishing_server.reset()
    for name, value in publishing_server.settings().items():
        setattr(settings, name, value)
    settings.TIKTOK_PULL_FROM_URL_PREFIXES = [f"{publishing_server.base_url}/verified/"]
    publishing_server.verify_prefix(f"{publishing_server.base_url}/verified/")
    settings.INTEGRATIONS_PUBLISH_ALLOW_PRIVATE_MEDIA = True  # the fake hosts the media on 127.0.0.1
    settings.INTEGRATIONS_PUBLISH_POLL_SECONDS = 1.0
    settings.INTEGRATIONS_PUBLISH_RETRY_BASE_SECONDS = 1.0
    yield publishing_server
    publishing_server.reset()


def connect(fake, creator, platform: str, *, token: str | None = None, scopes=None, **fields) -> Connection:
    token = token or f"{platform}-access-{creator.pk}"
    fake.add_token(platform, token)
    defaults = {"external_account_id": "17841400000000001"} if platform == "instagram" else {}
    return Connection.objects.create(
        agency=creator.agency, creator=creator, platform=platform, status="connected", access_token=token,
        scopes=SCOPES[platform] if scopes is None else scopes, **{**defaults, **fields},
    )  # fmt: skip


def soon(minutes: int = 5):
    return timezone.now() + timedelta(minutes=minutes)


def make_due(post: ScheduledPost) -> None:
    ScheduledPost.objects.filter(pk=post.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def step(post: ScheduledPost) -> str:
    """The worker's next step for the post, as if its time had come."""
    make_due(post)
    return post_publish(post_id=post.pk)


def run_until_settled(post: ScheduledPost, *, limit: int = 10) -> list[str]:
    results = []
    for _ in range(limit):
        results.append(step(post))
        post.refresh_from_db()
        if post.status in ("published", "failed", "cancelled"):
            break
    return results
