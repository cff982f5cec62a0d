"""The engine in one process: definitions refused at registration, runs advanced step by step
(``engine.drive`` runs the queued steps here instead of in a worker), errors, retries, recovery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from apps.workflows import engine, services
from apps.workflows.definitions import Step, Workflow
from apps.workflows.models import RunState, StepRun, StepState, WorkflowAction, WorkflowRun
from tests.messaging.api_helpers import token_client
from tests.workflows import sample_workflows  # noqa: F401  (registers the test workflows)


def _noop(ctx):
    return None


def test_a_cycle_is_refused_naming_the_steps():
    with pytest.raises(
        ImproperlyConfigured, match=r"'loop' has a cycle \(each step depends on the next\): a -> c -> b -> a\."
    ):
        Workflow("loop", steps=[Step("a", _noop, depends_on=["c"]), Step("b", _noop, depends_on=["a"]),
                                Step("c", _noop, depends_on=["b"])])  # fmt: skip


def test_an_unknown_dependency_and_a_duplicate_step_are_refused():
    with pytest.raises(ImproperlyConfigured, match="step 'b' depends on unknown step 'missing'"):
        Workflow("unknown", steps=[Step("a", _noop), Step("b", _noop, depends_on=["missing"])])
    with pytest.raises(ImproperlyConfigured, match="step 'a' is defined twice"):
        Workflow("twice", steps=[Step("a", _noop), Step("a", _noop)])
    with pytest.raises(ImproperlyConfigured, match="unknown queue 'fast'"):
        Workflow("queue", steps=[Step("a", _noop, queue="fast")])


def test_steps_run_in_dependency_order_and_pass_outputs(world):
    run = services.run_start(membership=world.owner, workflow="test_chain", data={"start": 5})
    assert {row.step: row.state for row in StepRun.objects.filter(run=run)} == {
        "first": "queued", "double": "pending", "last": "pending",
    }  # fmt: skip
    run = engine.drive(run.pk)
    assert run.state == RunState.SUCCEEDED
    assert run.output == {"last": {"value": 11}}
    assert run.started_at and run.finished_at and run.finished_at >= run.started_at
    assert all(row.attempts == 1 for row in StepRun.objects.filter(run=run))
    assert WorkflowAction.objects.get(run=run).kind == "start"


def test_a_false_condition_skips_and_fan_out_makes_one_step_run_per_item(world):
    run = services.run_start(membership=world.owner, workflow="test_branches", data={"items": [1, 2, 3]})
    run = engine.drive(run.pk)
    assert run.state == RunState.SUCCEEDED
    rows = {(row.step, row.index): row for row in StepRun.objects.filter(run=run)}
    assert rows[("only_if_asked", 0)].state == StepState.SKIPPED
    assert rows[("after_condition", 0)].output == {"saw": None}
    assert [rows[("square", i)].output for i in range(3)] == [1, 4, 9]
    assert run.output["total"] == {"squares": [1, 4, 9], "sum": 14}
    asked = engine.drive(services.run_start(membership=world.owner, workflow="test_branches",
                                            data={"items": [], "ask": True}).pk)  # fmt: skip
    rows = {row.step: row for row in StepRun.objects.filter(run=asked)}
    assert rows["after_condition"].output == {"saw": {"ran": True}}
    assert rows["square"].state == StepState.SKIPPED  # nothing to fan out over
    assert asked.output["total"] == {"squares": [], "sum": 0}


def test_a_permanent_error_fails_the_run_with_the_step_and_error_and_stops(world):
    run = engine.drive(services.run_start(membership=world.owner, workflow="test_permanent").pk)
    assert run.state == RunState.FAILED
    assert run.error == "Step refuse failed: The creator's persona is empty."
    rows = {row.step: row for row in StepRun.objects.filter(run=run)}
    assert rows["refuse"].state == StepState.FAILED and rows["refuse"].attempts == 1
    assert rows["never"].state == StepState.CANCELLED and rows["never"].attempts == 0


def test_a_retryable_error_is_retried_up_to_the_steps_retries(world):
    run = engine.drive(services.run_start(membership=world.owner, workflow="test_flaky", data={"fail_times": 2}).pk)
    assert run.state == RunState.SUCCEEDED
    assert run.output == {"flaky": {"attempt": 3}}
    run = engine.drive(services.run_start(membership=world.owner, workflow="test_flaky", data={"fail_times": 5}).pk)
    assert run.state == RunState.FAILED
    row = StepRun.objects.get(run=run)
    assert row.attempts == 3 and "provider busy (attempt 3)" in row.error


def test_members_retry_skip_and_cancel_with_an_audit_trail(world):
    run = engine.drive(services.run_start(membership=world.owner, workflow="test_permanent").pk)
    refuse = StepRun.objects.get(run=run, step="refuse")
    services.step_skip(membership=world.manager, step_run=refuse)
    run = engine.drive(run.pk)
    assert run.state == RunState.SUCCEEDED
    assert StepRun.objects.get(run=run, step="never").output == {"ran": True}
    assert list(WorkflowAction.objects.filter(run=run).values_list("kind", "actor")) == [
        ("start", world.owner.user_id), ("skip", world.manager.user_id),
    ]  # fmt: skip

    failed = engine.drive(services.run_start(membership=world.owner, workflow="test_flaky", data={"fail_times": 3}).pk)
    row = StepRun.objects.get(run=failed)
    services.step_retry(membership=world.owner, step_run=row)
    failed.refresh_from_db()
    assert failed.state == RunState.RUNNING and failed.error == ""
    row.refresh_from_db()
    assert row.state == StepState.QUEUED and row.attempts == 0  # a fresh budget of attempts
    failed = engine.drive(failed.pk)
    assert failed.state == RunState.FAILED and StepRun.objects.get(run=failed).attempts == 3
    assert WorkflowAction.objects.filter(run=failed, kind="retry", actor=world.owner.user).count() == 1
    services.run_cancel(membership=world.owner, run=failed)
    with pytest.raises(services.WorkflowStateError):
        services.step_retry(membership=world.owner, step_run=StepRun.objects.get(run=failed))

    open_run = services.run_start(membership=world.owner, workflow="test_chain")
    services.run_cancel(membership=world.manager, run=open_run)
    assert engine.drive(open_run.pk).state == RunState.CANCELLED
    assert set(StepRun.objects.filter(run=open_run).values_list("state", flat=True)) == {StepState.CANCELLED}
    assert engine.execute(StepRun.objects.get(run=open_run, step="first").pk) == "not-claimed"


def test_viewers_and_chatters_cannot_act(world):
    from django.core.exceptions import PermissionDenied

    for role in ("viewer", "chatter"):
        with pytest.raises(PermissionDenied):
            services.run_start(membership=world.member(role), workflow="test_chain")


def test_recovery_requeues_an_idempotent_step_and_holds_a_non_idempotent_one(world):
    idempotent = services.run_start(membership=world.owner, workflow="test_slow", data={"seconds": 0})
    once = services.run_start(membership=world.owner, workflow="test_slow_once", data={"seconds": 0})
    past = timezone.now() - timedelta(seconds=5)
    # A worker claimed each step and died: running, claim expired.
    StepRun.objects.filter(run__in=[idempotent, once], step="slow").update(
        state=StepState.RUNNING, attempts=1, claimed_by="dead-worker:1", claim_expires_at=past
    )
    counts = engine.recover()
    assert counts["requeued"] == 1 and counts["needs_attention"] == 1
    assert engine.drive(idempotent.pk).state == RunState.SUCCEEDED
    assert StepRun.objects.get(run=idempotent, step="slow").attempts == 2
    once.refresh_from_db()
    held = StepRun.objects.get(run=once)
    assert once.state == RunState.NEEDS_ATTENTION and held.state == StepState.NEEDS_ATTENTION
    assert held.attempts == 1 and "not safe to run twice" in held.error
    assert engine.drive(once.pk).state == RunState.NEEDS_ATTENTION  # nothing runs it on its own
    services.step_retry(membership=world.owner, step_run=held)
    assert engine.drive(once.pk).state == RunState.SUCCEEDED


def test_a_run_of_a_workflow_this_process_does_not_know_does_not_stop_recovery(world, client_for):
    # A deploy renamed a workflow while its step was running, and the worker died (or an older
    # process runs the beat): the recovery beat must leave that run and still recover every other
    # run in the same pass; retry and skip say why they cannot act instead of a 500.
    gone = services.run_start(membership=world.owner, workflow="test_slow_once", data={"seconds": 0})
    other = services.run_start(membership=world.owner, workflow="test_slow", data={"seconds": 0})
    past = timezone.now() - timedelta(seconds=5)
    StepRun.objects.filter(run__in=[gone, other], step="slow").update(
        state=StepState.RUNNING, attempts=1, claimed_by="dead-worker:1", claim_expires_at=past
    )
    WorkflowRun.objects.filter(pk=gone.pk).update(workflow="test_renamed_away")
    counts = engine.recover()
    assert counts["requeued"] == 1 and counts["needs_attention"] == 1
    assert engine.drive(other.pk).state == RunState.SUCCEEDED
    gone.refresh_from_db()
    held = StepRun.objects.get(run=gone)
    assert gone.state == RunState.RUNNING and held.state == StepState.NEEDS_ATTENTION  # not run twice
    client = client_for(world.owner)
    api = token_client(world.owner, "write")
    for action in ("retry", "skip"):  # a clear refusal, not a 500
        response = client.post(f"/workflows/steps/{held.pk}/{action}/", follow=True)
        assert response.status_code == 200 and "no longer defined" in response.content.decode()
        response = api.post(f"/api/v1/workflows/steps/{held.pk}/{action}")
        assert response.status_code == 409 and "no longer defined" in response.content.decode()
    assert client.get(f"/workflows/runs/{gone.pk}/").status_code == 200


def test_a_non_json_output_fails_the_step_clearly(world):
    from apps.workflows.definitions import register

    register(Workflow("test_bad_output", steps=[Step("bad", lambda ctx: {"when": timezone.now()}, retries=0)]))
    run = engine.drive(services.run_start(membership=world.owner, workflow="test_bad_output").pk)
    assert run.state == RunState.FAILED
    assert "not JSON-serialisable" in run.error
