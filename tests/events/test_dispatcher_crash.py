"""No event is lost when the dispatcher dies: a real dispatcher process is SIGKILLed after it
claimed a batch and before it marked it; the next dispatcher claims the batch again once the
lease expires, and every event reaches the group and the subscriber."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from apps.core import events
from apps.core.models import OutboxEvent
from tests.events.dispatcher_process import GROUP
from tests.processes import ROOT, database_url

pytestmark = pytest.mark.timeout(180)


def _dispatcher(log, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.events.dispatcher_process"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url(),
            "EVENTS_CONSUMER_LOG": str(log),
            "EVENTS_LEASE_SECONDS": "2",
            "EVENTS_BATCH_SIZE": "10",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_no_event_is_lost_when_the_dispatcher_is_killed_between_claim_and_mark(transactional_db, tmp_path, settings):
    settings.EVENTS_DISPATCH_ON_COMMIT = "sweep"  # only the dispatcher processes below send
    ids = [events.publish("test.crash", agency_id=1, payload={"n": n}, groups=[GROUP]).pk for n in range(25)]
    log = tmp_path / "consumed.log"
    log.touch()

    doomed = _dispatcher(log, HUNTAZE_OUTBOX_PAUSE_AFTER_CLAIM="120")
    try:
        _wait_for(lambda: OutboxEvent.objects.exclude(claim_token="").exists(), 60, "the first claim")
        claimed = set(OutboxEvent.objects.exclude(claim_token="").values_list("pk", flat=True))
        assert claimed == set(ids[:10])  # one batch, in id order
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        if doomed.poll() is None:
            doomed.kill()
        doomed.communicate()
    assert OutboxEvent.objects.filter(dispatched_at__isnull=False).count() == 0
    assert log.read_text() == ""  # it died before sending anything

    survivor = _dispatcher(log)
    output, _ = survivor.communicate(timeout=120)
    assert survivor.returncode == 0, output
    assert OutboxEvent.objects.filter(dispatched_at__isnull=True).count() == 0
    lines = Counter(log.read_text().split("\n")[:-1])
    assert lines == Counter([f"group {i}" for i in ids] + [f"subscriber {i}" for i in ids])  # each once
    attempts = dict(OutboxEvent.objects.values_list("pk", "attempts"))
    assert {attempts[i] for i in ids[:10]} == {2} and {attempts[i] for i in ids[10:]} == {1}
