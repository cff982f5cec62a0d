"""Demo data for workflows: a finished month-end AI cost report and a nightly optimization run for
the demo agency, run step by step in this process (``engine.drive``, no worker needed), so the
runs page opens on real runs with their DAG, outputs and history."""

from __future__ import annotations

from apps.core.registry import DemoContext

ORDER = 90  # after optimization and monitoring: the runs read what they seeded


def seed(ctx: DemoContext) -> None:
    from apps.workflows import engine, services

    owner = ctx.memberships["owner"]
    made = []
    for name in ("month_end_cost_report", "nightly_optimization"):
        run = services.run_start(membership=owner, workflow=name)
        run = engine.drive(run.pk)
        made.append(f"{name} ({run.state})")
    ctx.log(f"workflows: {', '.join(made)}")
