"""Delivery guarantees with a real Celery worker process (tests/processes.py), on the same broker
and database as the test run: retries, dead letters, and a worker killed with SIGKILL while the
platform had the message, rescued by the sweeper without a second message."""

from __future__ import annotations

import time

import pytest

from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.delivery.services import delivery_sweep
from tests.conftest import build_world
from tests.delivery.conftest import enqueue
from tests.processes import celery_worker_args, running

WORKER_ENV = {
    "DELIVERY_RETRY_BASE_SECONDS": "0.2",
    "DELIVERY_RETRY_MAX_SECONDS": "0.5",
    "DELIVERY_LEASE_SECONDS": "4",
    "DELIVERY_MAX_ATTEMPTS": "3",
}


def wait_for(condition, timeout: float = 60, what: str = "the worker") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def statuses(*deliveries) -> list[str]:
    by_pk = dict(Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).values_list("pk", "status"))
    return [by_pk[d.pk] for d in deliveries]


@pytest.mark.worker
def test_a_real_worker_sends_retries_and_gives_up(transactional_db, settings):
    settings.DELIVERY_MAX_ATTEMPTS = 3  # stored on each delivery at enqueue, here in the test process
    world = build_world("Workers")
    with running(celery_worker_args(), env=WORKER_ENV):
        plain = enqueue(world, recipient_id="fan-plain")
        flaky = enqueue(world, recipient_id="fail-retry-1-fan", queue="bulk")
        blocked = enqueue(world, recipient_id="fail-permanent-fan")
        hopeless = enqueue(world, recipient_id="fail-retry-fan")
        wait_for(lambda: statuses(plain, flaky, blocked, hopeless) == ["sent", "sent", "dead", "dead"])
    assert Delivery.objects.get(pk=flaky.pk).attempts == 2
    assert Delivery.objects.get(pk=hopeless.pk).attempts == 3
    assert sorted(SimulatedOutboundMessage.objects.values_list("recipient_id", flat=True)) == [
        "fail-retry-1-fan",
        "fan-plain",
    ]


@pytest.mark.worker
def test_a_worker_killed_mid_send_leaves_one_message_after_the_sweeper_and_another_worker(transactional_db):
    world = build_world("Killed")
    with running(celery_worker_args(), env=WORKER_ENV) as worker:
        # The simulated platform stores the message, then takes 30 s to answer: kill the worker then.
        delivery = enqueue(world, recipient_id="slow-30-fan")
        wait_for(lambda: SimulatedOutboundMessage.objects.exists(), what="the platform to receive the message")
        worker.kill()
        worker.wait(timeout=10)
    assert Delivery.objects.get(pk=delivery.pk).status == "sending"

    # The lease (4 s) runs out; the sweeper takes the delivery back for a retry.
    wait_for(lambda: delivery_sweep()["lease_expired"] == 1, timeout=20, what="the lease to expire")
    assert Delivery.objects.get(pk=delivery.pk).status == "failed"

    with running(celery_worker_args(), env=WORKER_ENV):
        wait_for(lambda: statuses(delivery) == ["sent"], what="the second worker")
    delivery.refresh_from_db()
    message = SimulatedOutboundMessage.objects.get()  # one message, whatever was re-sent
    assert delivery.platform_message_id == message.platform_message_id
    assert delivery.attempts == 2
