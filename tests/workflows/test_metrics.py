"""Workflow metrics (docs/metrics.md): each step's run time and each run's end reach the metrics
sinks, by workflow, step and outcome, so an operator charts a slow step or a failing workflow
with the rest of the service's metrics."""

from __future__ import annotations

from apps.core import metrics
from apps.monitoring.models import MetricSample
from apps.workflows import engine, services
from tests.workflows import sample_workflows  # noqa: F401  (registers the test workflows)


def _series(name: str) -> dict[tuple, int]:
    metrics.flush()
    counts: dict[tuple, int] = {}
    for sample in MetricSample.objects.filter(name=name):
        key = tuple(sorted(sample.dimensions.items()))
        counts[key] = counts.get(key, 0) + sample.count
    return counts


def test_steps_and_runs_are_measured_by_workflow_step_and_outcome(world, database_sink):
    engine.drive(services.run_start(membership=world.owner, workflow="test_chain", data={"start": 5}).pk)
    engine.drive(services.run_start(membership=world.owner, workflow="test_flaky", data={"fail_times": 1}).pk)
    engine.drive(services.run_start(membership=world.owner, workflow="test_permanent").pk)

    steps = _series("workflow.step")
    for step in ("first", "double", "last"):
        assert steps[(("outcome", "succeeded"), ("step", step), ("workflow", "test_chain"))] == 1
    assert steps[(("outcome", "retrying"), ("step", "flaky"), ("workflow", "test_flaky"))] == 1
    assert steps[(("outcome", "succeeded"), ("step", "flaky"), ("workflow", "test_flaky"))] == 1
    assert steps[(("outcome", "failed"), ("step", "refuse"), ("workflow", "test_permanent"))] == 1
    assert not any(dict(key)["step"] == "never" for key in steps), "a step that never ran has no time"

    runs = _series("workflow.run")
    assert runs == {
        (("outcome", "succeeded"), ("workflow", "test_chain")): 1,
        (("outcome", "succeeded"), ("workflow", "test_flaky")): 1,
        (("outcome", "failed"), ("workflow", "test_permanent")): 1,
    }
    sample = MetricSample.objects.filter(name="workflow.step").first()
    assert sample.unit == "Milliseconds" and sample.sum >= 0
