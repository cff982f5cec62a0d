from __future__ import annotations

import uuid
from contextlib import contextmanager

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
