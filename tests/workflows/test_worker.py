"""Workflows on a real Celery worker process (same broker and database as the test run), and a
worker SIGKILLed in the middle of a step: the recovery task resumes an idempotent step once its
claim expires and holds a non-idempotent one for a human instead of running it twice."""

from __future__ import annotations

import signal
import time

import pytest

from apps.workflows import engine, services
from apps.workflows.models import RunState, StepRun, StepState, WorkflowAction
from apps.workflows.tasks import recover_workflows
from tests.conftest import build_world
from tests.processes import celery_worker_args, running
from tests.workflows import sample_workflows  # noqa: F401

WORKER_ENV = {"WORKFLOW_MODULES": "tests.workflows.sample_workflows", "WORKFLOW_RETRY_BACKOFF_SECONDS": "0.2"}


@pytest.fixture(autouse=True)
def _empty_queues():
    """Earlier tests of the session queue tasks for rows since flushed (tasks are not eager by
    default): a worker started here would work through thousands of those before this test's steps."""
    from huntaze.celery import app

    app.control.purge()


def _wait(predicate, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _kill_mid_step(run_id: int) -> StepRun:
    """Start a worker, wait until it claimed the run's sleeping step, SIGKILL it."""
    with running(celery_worker_args(), env=WORKER_ENV) as worker:
        _wait(lambda: StepRun.objects.filter(run_id=run_id, step="slow", state=StepState.RUNNING).exists(),
              what="the worker to claim the step")  # fmt: skip
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    row = StepRun.objects.get(run_id=run_id, step="slow")
    assert row.state == StepState.RUNNING and row.attempts == 1  # the dead worker's claim is still there
    _wait(lambda: row.claim_expires_at < engine.timezone.now(), timeout=10, what="the claim to expire")
    return row


@pytest.mark.worker
def test_a_run_goes_through_a_real_worker(transactional_db):
    world = build_world("Workers")
    with running(celery_worker_args(), env=WORKER_ENV):
        run = services.run_start(membership=world.owner, workflow="test_branches", data={"items": [2, 3]})
        run = engine.wait_for(run.pk, timeout=60)
    assert run.state == RunState.SUCCEEDED, run.error
    assert run.output["total"] == {"squares": [4, 9], "sum": 13}
    assert set(StepRun.objects.filter(run=run).values_list("claimed_by", flat=True)) - {""}  # a worker's id


@pytest.mark.worker
def test_an_idempotent_step_killed_mid_run_is_resumed_after_its_claim_expires(transactional_db):
    world = build_world("Killed")
    run = services.run_start(membership=world.owner, workflow="test_slow", data={"seconds": 30})
    _kill_mid_step(run.pk)
    assert recover_workflows() == {"requeued": 1, "needs_attention": 0, "failed": 0, "republished": 0, "advanced": 0}
    with running(celery_worker_args(), env=WORKER_ENV):
        run = engine.wait_for(run.pk, timeout=60)
    assert run.state == RunState.SUCCEEDED, run.error
    row = StepRun.objects.get(run=run, step="slow")
    assert row.attempts == 2 and row.output == {"slept": 30, "attempt": 2}
    assert StepRun.objects.get(run=run, step="after").state == StepState.SUCCEEDED
    assert WorkflowAction.objects.filter(run=run, kind="recover", actor=None).count() == 1


@pytest.mark.worker
def test_a_non_idempotent_step_killed_mid_run_waits_for_a_human(transactional_db):
    world = build_world("Held")
    run = services.run_start(membership=world.owner, workflow="test_slow_once", data={"seconds": 30})
    _kill_mid_step(run.pk)
    assert recover_workflows()["needs_attention"] == 1
    with running(celery_worker_args(), env=WORKER_ENV):
        time.sleep(3)  # a live worker (and any redelivered message) must not run it again
        row = StepRun.objects.get(run=run)
        assert row.state == StepState.NEEDS_ATTENTION and row.attempts == 1
        run.refresh_from_db()
        assert run.state == RunState.NEEDS_ATTENTION and "not safe to run twice" in run.error
        services.step_retry(membership=world.manager, step_run=row)  # a member checked and retries
        # The retry is attempt 1 again, which sleeps its 30 s: leave room for a loaded machine.
        run = engine.wait_for(run.pk, timeout=120)
    assert run.state == RunState.SUCCEEDED
