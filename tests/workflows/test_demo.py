"""The demo hook leaves finished runs the runs page shows."""

from __future__ import annotations

import random

import pytest

from apps.core.registry import DemoContext
from apps.integrations.models import ScheduledPost
from apps.workflows import demo
from apps.workflows.models import WorkflowRun

pytestmark = pytest.mark.django_db


def test_the_demo_agency_gets_finished_runs(world, client_for):
    ctx = DemoContext(
        options={},
        log=lambda line: None,
        rng=random.Random(1),
        agency=world.agency,
        memberships={"owner": world.owner, "manager": world.manager},
        creators=[world.creator],
    )
    demo.seed(ctx)
    runs = WorkflowRun.objects.filter(agency=world.agency)
    assert sorted(runs.values_list("workflow", "state")) == [
        ("month_end_cost_report", "succeeded"), ("nightly_optimization", "succeeded"),
        ("weekly_content_plan", "succeeded"),
    ]  # fmt: skip
    body = client_for(world.owner).get("/workflows/").content.decode()
    assert "Month-end AI cost report" in body and "Nightly optimization" in body and "Weekly content plan" in body
    # The plan's Instagram drafts wait on the publishing calendar for a member's approval.
    plan = runs.get(workflow="weekly_content_plan").output["plan"]
    drafts = ScheduledPost.objects.filter(agency=world.agency, status="draft", platform="instagram")
    assert drafts.count() == len(plan["posts"]) >= 1
