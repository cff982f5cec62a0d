"""A mass send survives a restart of Redis in the middle of it, with real worker processes
(tests/processes.py) on a redis-server of the test's own, started on a free loopback port without
persistence and stopped and started again by the test (never the machine's shared Redis):

- the broker restarted: the private Redis is the Celery broker only, and the restart forgets
  every task message it held (the account's pump queued or running). The worker reconnects by
  itself and the sweeper (beat's job, run here) re-publishes the pump of the deliveries left
  pending;
- Redis restarted as the shared state: REDIS_URL points the worker at the private Redis (send
  rate limits, breaker, cache, results), with the broker on the same Redis (docker-compose.yml's
  deployment: both are lost at once) or on RabbitMQ (its queued tasks survive; only the shared
  state is lost). The rate limiter starts again empty and keeps pacing the sends.

Every fan ends with exactly one message on the simulated platform, counted by idempotency key,
and each delivery records that message's id. The third fault of the campaign guarantees, a
worker killed in the middle of a mass send, is tests/delivery/test_worker.py's.

The worker must reconnect by itself: Celery 5.7.0's worker exits instead when it loses a Redis
broker while a late-acknowledged task is not acknowledged, which huntaze/celery.py's Consumer
works around. A replacement is started if one exits anyway (as docker-compose.yml's
``restart: unless-stopped`` would), so the guarantees are still checked, and the test then fails
with the exited worker's log."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.utils import timezone

from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.delivery.services import Outbound, delivery_enqueue_many, delivery_sweep
from tests.conftest import build_world
from tests.delivery.conftest import publishing_to
from tests.delivery.test_worker import WORKER_ENV, broker, wait_for  # noqa: F401 (broker: a fixture, used by name)
from tests.processes import celery_worker_args, free_port, running

# The embedded default has no Redis to restart (its state is a SQLite file, its broker needs no
# server); CI runs these in the services mode, where a restart is a fault that happens.
pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs the services mode (REDIS_URL): the embedded default has no Redis"
)

FANS = 60
# One send every 0.1 s per account, no burst: the campaign takes ~6 s, long enough to stop Redis
# in the middle of it, and a limiter that failed open after the restart would show (the pump would
# then send as fast as the database lets it).
RATE, BURST = 10, 1
PACED = json.dumps(
    {
        "account": {"limit": RATE, "seconds": 1, "burst": BURST},
        "creator": {"limit": 1000, "seconds": 1},
        "agency": {"limit": 1000, "seconds": 1},
        "global": {"limit": 10000, "seconds": 1},
    }
)
DOWN_SECONDS = 1.5  # how long Redis stays away: longer than a publish's retries (~0.6 s)


class PrivateRedis:
    """A redis-server of the test's own on loopback, without persistence, in a directory of its
    own; ``stop`` and ``start`` it again on the same port to restart it empty."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            "redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
            "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, retry=None)
        try:
            wait_for(self._answers(client), timeout=10, what=f"the private Redis on port {self.port}")
        finally:
            client.close()

    def _answers(self, client: redis.Redis):
        def ping() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log()
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        return ping

    def stop(self) -> None:
        """SIGTERM: without persistence configured, everything it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text()[-2000:] if path.exists() else ""


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH: the restart tests run and restart a Redis of their own")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def celery_keyprefix() -> str:
    """The broker key prefix a worker on a Redis broker takes from REDIS_KEY_PREFIX (settings)."""
    return f"{django_settings.REDIS_KEY_PREFIX}:celery:"


def start_campaign(world) -> list[str]:
    """A campaign's mass send (one batch, sent by the account's pump); answers its fans."""
    fans = [f"fan-{i:03d}" for i in range(FANS)]
    delivery_enqueue_many(
        agency_id=world.agency.pk,
        creator_id=world.creator.pk,
        platform="onlyfans",
        messages=[Outbound(recipient_id=fan, text=f"Hi {fan}!", idempotency_key=f"mass-{fan}") for fan in fans],
    )
    return fans


def on_the_platform(world) -> int:
    return SimulatedOutboundMessage.objects.filter(agency=world.agency).count()


class Beat:
    """The sweeper on a short schedule (beat runs it every minute), from this process: it
    publishes to the broker this process publishes to. Keeps each pass's counts."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.passes: list[dict[str, int]] = []
        self._last = 0.0

    def tick(self) -> None:
        if time.monotonic() - self._last >= self.every:
            self.passes.append(delivery_sweep())
            self._last = time.monotonic()

    def total(self, count: str) -> int:
        return sum(counts[count] for counts in self.passes)


class Workers:
    """Worker processes kept up as docker-compose.yml keeps its worker (``restart: unless-stopped``):
    ``keep_up()`` starts another when the last one exited, and remembers the one that did."""

    def __init__(self, stack: ExitStack, env: dict[str, str]) -> None:
        self.stack, self.env = stack, env
        self.started: list[subprocess.Popen] = []
        self.exited: list[subprocess.Popen] = []
        self.start()

    def start(self) -> None:
        # A node name of its own: a worker of another test run on this machine and the same
        # RabbitMQ would hold the default name's exclusive control queue.
        args = [*celery_worker_args(), "-n", f"restarts-{uuid.uuid4().hex[:8]}@%h"]
        self.started.append(self.stack.enter_context(running(args, env=self.env)))

    def keep_up(self) -> None:
        if self.started[-1].poll() is not None:
            self.exited.append(self.started[-1])
            self.start()


@contextmanager
def workers_kept_up(env: dict[str, str]):
    with ExitStack() as stack:
        yield Workers(stack, env)


def finish_with_the_sweeper(world, fans: list[str], beat: Beat, workers: Workers, timeout: float = 40) -> None:
    def all_sent() -> bool:
        workers.keep_up()
        beat.tick()
        return Delivery.objects.filter(agency=world.agency, status=Delivery.Status.SENT).count() == len(fans)

    wait_for(all_sent, timeout=timeout, what="the worker and the sweeper to finish the campaign")


def assert_no_worker_exited(workers: Workers) -> None:
    """Called last, once the campaign's guarantees are checked: the worker reconnected by itself
    (huntaze/celery.py's Consumer works around Celery 5.7.0 exiting on a Redis broker restart)."""
    if workers.exited:
        output = workers.exited[0].output
        raise AssertionError(f"a worker exited on the restart instead of reconnecting:\n{output[-3000:]}")


def assert_every_fan_has_exactly_one_message(world, fans: list[str]) -> None:
    """The simulated platform keeps one message per idempotency key and each fan has a key of
    their own: one message per fan, and each delivery recorded the id of the one its fan got."""
    on_platform = SimulatedOutboundMessage.objects.filter(agency=world.agency)
    assert Counter(on_platform.values_list("recipient_id", flat=True)) == Counter(fans)  # every fan, each once
    messages = dict(on_platform.values_list("idempotency_key", "platform_message_id"))
    deliveries = Delivery.objects.filter(agency=world.agency)
    assert set(deliveries.values_list("status", flat=True)) == {Delivery.Status.SENT}
    assert dict(deliveries.values_list("idempotency_key", "platform_message_id")) == messages


@pytest.mark.worker
@pytest.mark.timeout(90)
def test_a_broker_restarted_mid_campaign_loses_its_tasks_and_the_sweeper_finishes_the_campaign(
    transactional_db, settings, private_redis
):
    """The restart forgets the pump's task messages (the one running is never acknowledged, the
    next one cannot be published while the broker is away): the deliveries not sent yet stay
    pending until the sweeper re-publishes their pump. The worker reconnects by itself."""
    settings.DELIVERY_SWEEP_GRACE_SECONDS = 2  # the sweeper runs in this process
    world = build_world("Broker restart")
    env = {**WORKER_ENV, "CELERY_BROKER_URL": private_redis.url, "DELIVERY_RATE_LIMITS": PACED}
    beat = Beat()
    with (
        publishing_to(private_redis.url, {"global_keyprefix": celery_keyprefix()}),
        workers_kept_up(env) as workers,
    ):
        fans = start_campaign(world)
        wait_for(lambda: on_the_platform(world) >= 10, what="the campaign's first messages")
        private_redis.stop()
        assert on_the_platform(world) < FANS, "the campaign was over before the broker went away"
        time.sleep(DOWN_SECONDS)  # the fault itself: the broker is away this long
        private_redis.start()

        finish_with_the_sweeper(world, fans, beat, workers)
    assert "Connection to broker lost" in workers.started[0].output  # the worker did see the broker go
    assert beat.total("redispatched") > 0  # the pump's lost task, published again by the sweeper
    assert_every_fan_has_exactly_one_message(world, fans)
    assert_no_worker_exited(workers)


def restart_shared_state_mid_campaign(world, private_redis, env: dict[str, str]) -> None:
    """Start the campaign, restart Redis in the middle of it, let the worker and the sweeper
    finish it; then every fan has one message, and the sends after the restart went out at the
    rate limiter's pace (it works again, on an empty Redis)."""
    env = {**WORKER_ENV, "REDIS_URL": private_redis.url, "DELIVERY_RATE_LIMITS": PACED, **env}
    beat = Beat()
    with workers_kept_up(env) as workers:
        fans = start_campaign(world)
        wait_for(lambda: on_the_platform(world) >= 10, what="the campaign's first messages")
        private_redis.stop()
        assert on_the_platform(world) < FANS, "the campaign was over before Redis went away"
        time.sleep(DOWN_SECONDS)  # the fault itself: Redis is away this long
        private_redis.start()
        restarted_at = timezone.now()

        finish_with_the_sweeper(world, fans, beat, workers)
    assert_every_fan_has_exactly_one_message(world, fans)
    after = sorted(
        SimulatedOutboundMessage.objects.filter(agency=world.agency, received_at__gte=restarted_at).values_list(
            "received_at", flat=True
        )
    )
    assert len(after) > 1, "nothing was sent after the restart"
    # At RATE a second after BURST at once, n sends take at least (n - BURST) / RATE seconds (one
    # more send allowed for the jitter between the limiter's clock and the platform's). A limiter
    # failing open on the empty Redis would let the pump send as fast as the database goes.
    span = (after[-1] - after[0]).total_seconds()
    assert len(after) <= RATE * span + BURST + 1, f"{len(after)} sends in {span:.2f} s after the restart"
    assert_no_worker_exited(workers)


@pytest.mark.worker
@pytest.mark.timeout(90)
def test_redis_restarted_mid_campaign_as_broker_and_shared_state_leaves_every_fan_one_message(
    transactional_db, settings, private_redis
):
    settings.DELIVERY_SWEEP_GRACE_SECONDS = 2  # the sweeper runs in this process
    world = build_world("Redis restart")
    with publishing_to(private_redis.url, {"global_keyprefix": celery_keyprefix()}):
        restart_shared_state_mid_campaign(world, private_redis, {"CELERY_BROKER_URL": private_redis.url})


@pytest.mark.worker
@pytest.mark.timeout(90)
@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
def test_redis_restarted_mid_campaign_as_shared_state_with_the_broker_on_rabbitmq_leaves_every_fan_one_message(
    transactional_db,
    settings,
    private_redis,
    broker,  # noqa: F811 (the fixture imported above)
):
    """The broker (RabbitMQ, test_worker.py's ``broker`` fixture) keeps its tasks; the worker's
    rate limits, breaker and results are lost with Redis and its tasks meet a Redis that is away."""
    settings.DELIVERY_SWEEP_GRACE_SECONDS = 2
    world = build_world("Redis restart on RabbitMQ")
    restart_shared_state_mid_campaign(world, private_redis, broker)
