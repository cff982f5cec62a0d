"""Amazon SQS as the Celery broker (CELERY_BROKER_URL=sqs://, kombu's SQS transport), with real
worker processes on moto's SQS server on loopback (tests/fakes/sqs.py): a delivery published to
SQS is sent; the queues a worker creates carry the settings' prefix and visibility timeout; and the
message of a worker killed with SIGKILL is handed to another worker by SQS itself once its
visibility timeout ran out, leaving the fan one message. The kill in the middle of a mass send
runs on SQS too (tests/delivery/test_worker.py, broker "sqs")."""

from __future__ import annotations

import re

import pytest

from apps.delivery.models import SimulatedOutboundMessage
from huntaze.celery import QUEUES
from tests.conftest import build_world
from tests.delivery.conftest import SQS_VISIBILITY_TIMEOUT, enqueue
from tests.delivery.test_worker import WORKER_ENV, statuses, wait_for
from tests.processes import celery_worker_args, running

# Seconds a received message stays invisible in the redelivery test: longer than the claim's
# lease (WORKER_ENV: 4 s), so the redelivered task finds the dead worker's claim expired.
SHORT_VISIBILITY = 5


def counts(sqs_broker, queue: str) -> tuple[str, str]:
    """(visible, received and not yet deleted) messages of one of the test's queues."""
    attributes = sqs_broker.server.attributes(f"{sqs_broker.prefix}{queue}")
    return attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]


@pytest.mark.worker
def test_a_delivery_published_to_sqs_is_sent_by_a_real_worker(transactional_db, sqs_broker):
    world = build_world("On SQS")
    queues = sorted(f"{sqs_broker.prefix}{name}" for name in QUEUES)
    with running(celery_worker_args(), env={**WORKER_ENV, **sqs_broker.env}):
        # The worker creates its queues itself: this process only publishes once they exist.
        wait_for(lambda: sqs_broker.server.queue_names(sqs_broker.prefix) == queues, what="the worker's queues")
        delivery = enqueue(world, recipient_id="fan-on-sqs")
        wait_for(lambda: statuses(delivery) == ["sent"], what="the worker to send the delivery")
    assert list(SimulatedOutboundMessage.objects.values_list("recipient_id", flat=True)) == ["fan-on-sqs"]
    for name in queues:
        attributes = sqs_broker.server.attributes(name)
        assert attributes["VisibilityTimeout"] == str(SQS_VISIBILITY_TIMEOUT)  # SQS_VISIBILITY_TIMEOUT
    assert counts(sqs_broker, "interactive") == ("0", "0")  # the message was deleted: acknowledged


@pytest.mark.worker
def test_sqs_hands_a_killed_workers_message_to_another_worker_after_the_visibility_timeout(
    transactional_db, sqs_broker
):
    """The send task is acknowledged late, so the worker killed with SIGKILL while the platform
    had the message never deleted it from SQS. Once its visibility timeout ran out, SQS gives the
    same message to a second worker, which sends the delivery again by its idempotency key: one
    message on the platform, two attempts. No sweeper runs here: SQS's redelivery alone finishes
    the delivery.

    The queues are made beforehand with a 5-second visibility timeout, as an operator's
    Terraform would make them: settings refuse one that short for the queues kombu creates (a fan
    import may hold its message 900 s), and a queue that exists keeps its own."""
    for name in QUEUES:
        sqs_broker.server.create_queue(f"{sqs_broker.prefix}{name}", visibility_timeout=SHORT_VISIBILITY)
    world = build_world("Redelivered")
    env = {**WORKER_ENV, **sqs_broker.env}
    with running(celery_worker_args(), env=env) as first:
        # The simulated platform stores the message, then takes 3 s to answer: kill the worker then.
        delivery = enqueue(world, recipient_id="slow-3-fan")
        wait_for(lambda: SimulatedOutboundMessage.objects.exists(), what="the platform to receive the message")
        first.kill()
        first.wait(timeout=10)
    assert statuses(delivery) == ["sending"]
    assert counts(sqs_broker, "interactive") == ("0", "1")  # received by the dead worker, hidden from others

    wait_for(
        lambda: counts(sqs_broker, "interactive") == ("1", "0"),
        timeout=SHORT_VISIBILITY + 5,
        what="the message to become visible again",
    )
    with running(celery_worker_args(), env=env) as second:
        wait_for(lambda: statuses(delivery) == ["sent"], what="the second worker")
    assert counts(sqs_broker, "interactive") == ("0", "0")  # deleted by the second worker

    received = re.search(r"apps\.delivery\.tasks\.deliver\[([0-9a-f-]+)\] received", first.output)
    assert received, "the first worker logged no received task"
    assert f"apps.delivery.tasks.deliver[{received.group(1)}] received" in second.output  # one message, twice
    delivery.refresh_from_db()
    message = SimulatedOutboundMessage.objects.get()  # one message, whatever was re-sent
    assert delivery.attempts == 2 and delivery.platform_message_id == message.platform_message_id


def test_settings_count_every_tasks_time_limit_against_the_visibility_timeout(settings):
    """settings.SQS_MESSAGE_HELD_AT_MOST names what may hold an SQS message longest, and startup
    refuses a visibility timeout shorter than it: a task that sets itself a longer time limit
    must be named there too."""
    from huntaze.celery import app

    app.loader.import_default_modules()
    bound = max(settings.SQS_MESSAGE_HELD_AT_MOST.values())
    limits = {
        name: task.time_limit or settings.CELERY_TASK_TIME_LIMIT
        for name, task in app.tasks.items()
        if not name.startswith("celery.")
    }
    assert "apps.messaging.tasks.fan_import_task" in limits
    assert {name: limit for name, limit in limits.items() if limit > bound} == {}
