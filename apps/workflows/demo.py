"""Demo data for workflows: a finished month-end AI cost report, a nightly optimization run and an
Instagram weekly content plan for the first creator (its drafts await approval on the publishing
calendar) for the demo agency, run step by step in this process (``engine.drive``, no worker
needed), so the runs page opens on real runs with their DAG, outputs and history."""

from __future__ import annotations

from apps.core.registry import DemoContext

ORDER = 90  # after optimization and monitoring: the runs read what they seeded


def seed(ctx: DemoContext) -> None:
    from apps.workflows import engine, services

    owner = ctx.memberships["owner"]
    made = []
    starts = [("month_end_cost_report", {}), ("nightly_optimization", {})]
    if ctx.creators and ctx.creators[0].persona.strip():
        starts.append(("weekly_content_plan", {"creator_id": ctx.creators[0].pk, "ideas": 3, "platform": "instagram"}))
    for name, data in starts:
        run = services.run_start(membership=owner, workflow=name, data=data)
        run = engine.drive(run.pk)
        made.append(f"{name} ({run.state})")
    ctx.log(f"workflows: {', '.join(made)}")
