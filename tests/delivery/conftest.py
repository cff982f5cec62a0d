from __future__ import annotations

import uuid
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from apps.delivery.services import delivery_enqueue
from apps.delivery.signals import delivery_status_changed


def enqueue(world, **overrides):
    """delivery_enqueue for the world's first creator, with a fresh key unless one is given."""
    arguments = {
        "agency_id": world.agency.pk,
        "creator_id": world.creator.pk,
        "platform": "onlyfans",
        "recipient_id": "fan-1",
        "text": "Thanks for subscribing, babe!",
        "idempotency_key": uuid.uuid4().hex,
        **overrides,
    }
    return delivery_enqueue(**arguments)


@pytest.fixture
def status_events():
    """Every delivery_status_changed sent during the test, as (delivery_id, status, source, source_id)."""
    events = []

    def receiver(sender, *, delivery_id, status, source, source_id, **kwargs):
        events.append((delivery_id, status, source, source_id))

    delivery_status_changed.connect(receiver, dispatch_uid="tests.delivery.status_events")
    yield events
    delivery_status_changed.disconnect(dispatch_uid="tests.delivery.status_events")


def dispatched(callbacks) -> list[tuple[tuple, dict]]:
    """(args, options) of each task publication among captured on-commit callbacks."""
    return [call for call in (_as_publication(callback) for callback in callbacks) if call is not None]


def _as_publication(callback) -> tuple[tuple, dict] | None:
    keywords = dict(getattr(callback, "keywords", None) or {})
    if getattr(getattr(callback, "func", None), "__name__", "") != "apply_async" or "args" not in keywords:
        return None
    return keywords.pop("args"), keywords


@pytest.fixture
def after_commit(django_capture_on_commit_callbacks):
    """``with after_commit() as published:`` runs the block's on-commit callbacks as a commit
    would (signals, notification pushes), except task publications, which it lists instead of
    sending to the broker (tests run the task themselves)."""

    @contextmanager
    def run():
        published: list[tuple[tuple, dict]] = []
        with django_capture_on_commit_callbacks() as callbacks:
            yield published
        for callback in callbacks:
            publication = _as_publication(callback)
            if publication is None:
                callback()
            else:
                published.append(publication)

    return run


@contextmanager
def publishing_to(broker_url: str, transport_options: dict):
    """This process's Celery app publishing to another broker for the block (the workers under
    test get theirs from their environment)."""
    from huntaze.celery import app

    saved = app.conf.broker_url, app.conf.broker_transport_options
    app.conf.broker_url, app.conf.broker_transport_options = broker_url, transport_options
    app._after_fork()  # Celery's own reset of its pooled connections, so publishing reaches the new broker
    try:
        yield app
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        app._after_fork()


@pytest.fixture(scope="session")
def fake_sqs():
    """Amazon SQS on loopback (moto's server, tests/fakes/sqs.py), one per test run."""
    from tests.fakes.sqs import FakeSQS

    server = FakeSQS().start()
    yield server
    server.stop()


# Longer than every task holds a message (settings.SQS_MESSAGE_HELD_AT_MOST), as settings demand.
SQS_VISIBILITY_TIMEOUT = 2400


@pytest.fixture
def sqs_broker(fake_sqs, monkeypatch, settings):
    """Celery on the fake SQS for one test: ``env``, the environment of a worker on it (queues
    under a prefix of the test's own, so a message left invisible by a killed worker never
    reaches the next test), and this process publishing there with the same options."""
    prefix = f"{settings.SQS_QUEUE_NAME_PREFIX}{uuid.uuid4().hex[:6]}-"
    aws = fake_sqs.environment()
    for name, value in aws.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    env = {
        **aws,
        "CELERY_BROKER_URL": "sqs://",
        "SQS_QUEUE_NAME_PREFIX": prefix,
        "SQS_VISIBILITY_TIMEOUT": str(SQS_VISIBILITY_TIMEOUT),
        "SQS_WAIT_TIME_SECONDS": "1",
        "SQS_POLLING_INTERVAL": "0.1",
    }
    options = {
        "region": "us-east-1",
        "queue_name_prefix": prefix,
        "visibility_timeout": SQS_VISIBILITY_TIMEOUT,
        "wait_time_seconds": 1,
        "polling_interval": 0.1,
    }
    with publishing_to("sqs://", options):
        yield SimpleNamespace(env=env, prefix=prefix, server=fake_sqs)
