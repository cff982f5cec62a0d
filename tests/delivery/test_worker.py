"""Delivery guarantees with a real Celery worker process (tests/processes.py), on the same broker
and database as the test run: retries, dead letters, and a worker killed with SIGKILL while the
platform had the message, rescued by the sweeper without a second message; and a worker killed in
the middle of a mass send, on the run's broker, on RabbitMQ and on Amazon SQS, leaving every fan
exactly one message (SQS's own redelivery: tests/delivery/test_sqs_broker.py)."""

from __future__ import annotations

import time

import pytest
from django.db.models import Count

from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.delivery.services import Outbound, delivery_enqueue_many, delivery_sweep
from tests.conftest import build_world
from tests.delivery.conftest import enqueue, publishing_to
from tests.processes import celery_worker_args, running

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"

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


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(params=["run's broker", "rabbitmq", "sqs"])
def broker(request):
    """Worker environment for a broker: the run's own (Redis with services, the SQLite broker in
    the embedded default), RabbitMQ, or Amazon SQS (moto's server on loopback, tests/fakes/sqs.py),
    to which this process then publishes too."""
    if request.param == "sqs":
        yield request.getfixturevalue("sqs_broker").env
        return
    if request.param != "rabbitmq":
        yield {}
        return
    if not port_open(5672):
        pytest.skip("RabbitMQ is not listening on 127.0.0.1:5672 (.ci/run starts it)")
    from huntaze.celery import QUEUES

    with publishing_to(RABBITMQ_URL, {}) as app:
        with app.connection_for_write() as connection:  # what an earlier run left behind
            channel = connection.default_channel
            for name in QUEUES:
                try:
                    channel.queue_purge(name)
                except Exception:  # the queue does not exist yet (a closed channel is reopened below)
                    channel = connection.channel()
        yield {"CELERY_BROKER_URL": RABBITMQ_URL}


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


@pytest.mark.worker
@pytest.mark.timeout(240)
def test_a_worker_killed_in_the_middle_of_a_mass_send_leaves_every_fan_exactly_one_message(
    transactional_db, settings, broker
):
    """SIGKILL while one send is in flight (the slow fan: the platform has the message, the worker
    waits 3 s for its answer, less than the lease) and most of the batch still waits in the
    broker; a new worker and the sweeper (beat's job, run here) finish it, re-sending the slow
    fan's message by its key. The simulated platform keeps one message per idempotency key, and
    each fan has a key of their own: one message per fan."""
    # The sweeper runs in this process; a task it re-publishes before the worker drained the
    # broker's queue is only a duplicate (claimed once), but a flood of them slows the worker.
    settings.DELIVERY_SWEEP_GRACE_SECONDS = 8
    world = build_world("Mass send")
    fans = [f"fan-{i:03d}" for i in range(30)] + ["slow-3-fan-030"] + [f"fan-{i:03d}" for i in range(31, 120)]
    env = {**WORKER_ENV, **broker}
    with running(celery_worker_args(), env=env) as worker:
        # A campaign's way: one batch, sent by the account's pump (not a task per delivery).
        delivery_enqueue_many(
            agency_id=world.agency.pk,
            creator_id=world.creator.pk,
            platform="onlyfans",
            messages=[Outbound(recipient_id=fan, text=f"Hi {fan}!", idempotency_key=f"mass-{fan}") for fan in fans],
        )
        deliveries = list(Delivery.objects.filter(agency=world.agency))
        wait_for(
            lambda: SimulatedOutboundMessage.objects.filter(recipient_id="slow-3-fan-030").exists(),
            what="the platform to receive the slow fan's message",
        )
        worker.kill()  # SIGKILL: no clean-up, the in-flight task is never acknowledged
        worker.wait(timeout=10)
    left = dict(Delivery.objects.filter(agency=world.agency).values_list("status").annotate(n=Count("id")))
    assert left.get("sending") and left.get("pending"), f"the worker was killed in the middle of the batch: {left}"
    assert SimulatedOutboundMessage.objects.count() < len(fans)

    with running(celery_worker_args(), env=env):

        def everything_sent() -> bool:
            time.sleep(0.8)
            delivery_sweep()
            return Delivery.objects.filter(pk__in=[d.pk for d in deliveries], status="sent").count() == len(fans)

        wait_for(everything_sent, timeout=90, what="the second worker and the sweeper to finish the batch")
    received = list(SimulatedOutboundMessage.objects.values_list("recipient_id", flat=True))
    assert sorted(received) == sorted(fans)  # every fan, each exactly once
    slow = Delivery.objects.get(recipient_id="slow-3-fan-030")
    assert slow.attempts == 2 and slow.platform_message_id == (
        SimulatedOutboundMessage.objects.get(recipient_id="slow-3-fan-030").platform_message_id
    )
