"""Workflow pages: list (filters, pages, empty state), the run page with its DAG and live socket,
the start form, retry/skip/cancel; roles, another agency's runs (404) and a fixed query count."""

from __future__ import annotations

import pytest

from apps.workflows import engine, services
from apps.workflows.models import RunState, StepRun, WorkflowAction, WorkflowRun
from tests.messaging.api_helpers import error, token_client
from tests.workflows import sample_workflows  # noqa: F401

pytestmark = pytest.mark.django_db


def test_the_list_shows_an_empty_state_then_runs_filtered_and_paginated(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.owner)
    page = client.get("/workflows/")
    assert page.status_code == 200 and "No workflow runs" in page.content.decode()
    for _ in range(27):
        services.run_start(membership=world.owner, workflow="test_chain")
    failed = engine.drive(services.run_start(membership=world.owner, workflow="test_permanent").pk)
    with django_assert_max_num_queries(12):  # the same for 28 runs as for one
        body = client.get("/workflows/").content.decode()
    assert "Page 1 of 2" in body and f"#{failed.pk}" in body
    body = client.get("/workflows/?state=failed").content.decode()
    assert f"#{failed.pk}" in body and body.count('href="/workflows/runs/') == 1
    body = client.get("/workflows/?workflow=test_chain&page=2").content.decode()
    assert "Page 2 of 2" in body and f"#{failed.pk}" not in body
    assert client.get("/workflows/?state=bogus&page=x").status_code == 200  # bad filters are ignored


def test_the_run_page_draws_the_dag_and_is_live_only_while_active(world, client_for, django_assert_max_num_queries):
    client = client_for(world.viewer)
    run = services.run_start(membership=world.owner, workflow="test_branches", data={"items": [1, 2]})
    body = client.get(f"/workflows/runs/{run.pk}/").content.decode()
    # Live through the run's websocket (tests/workflows/test_live.py), never a timer poll.
    assert f'ws-connect="/ws/workflows/runs/{run.pk}/"' in body and "hx-trigger" not in body
    assert f'<a href="/workflows/runs/{run.pk}/">Refresh</a>' in body
    assert "Queued" in body and "Retry" not in body  # a viewer
    engine.drive(run.pk)
    with django_assert_max_num_queries(12):
        response = client.get(f"/workflows/runs/{run.pk}/")
    body = response.content.decode()
    assert "ws-connect" not in body.split('id="run-live"')[1].split(">")[0]  # succeeded: nothing to follow
    assert body.count('class="wf-row wf-succeeded"') == 5
    # Each step says what it waits for, which static/js/workflows.js draws as arrows; a step's box
    # takes the state of its runs (the skipped branch stays grey, the fan-out green).
    assert body.count('<article class="wf-step wf-') == 5
    assert 'data-step="square" data-after="items" data-state="succeeded"' in body
    assert 'data-step="only_if_asked" data-after="items" data-state="skipped"' in body
    assert "item 2" in body and "Condition not met." in body
    fragment = client.get(f"/workflows/runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="run-body"') and "<html" not in fragment
    # The query count does not grow with the number of fan-out items.
    big = engine.drive(services.run_start(membership=world.owner, workflow="test_branches",
                                          data={"items": list(range(40))}).pk)  # fmt: skip
    with django_assert_max_num_queries(12):
        assert client.get(f"/workflows/runs/{big.pk}/").status_code == 200


def test_untrusted_output_is_escaped(world, client_for):
    run = engine.drive(services.run_start(membership=world.owner, workflow="test_branches",
                                          data={"items": [], "note": "<script>alert(1)</script>"}).pk)  # fmt: skip
    StepRun.objects.filter(run=run, step="items").update(output={"caption": "<img src=x onerror=alert(1)>"})
    body = _client(world).get(f"/workflows/runs/{run.pk}/").content.decode()
    assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


def test_inputs_and_outputs_read_as_json(world, client_for):
    run = engine.drive(services.run_start(membership=world.owner, workflow="test_branches",
                                          data={"items": [], "note": "Café"}).pk)  # fmt: skip
    StepRun.objects.filter(run=run, step="items").update(output={"sent": True, "skipped": None})
    body = _client(world).get(f"/workflows/runs/{run.pk}/").content.decode()
    # JSON as an integrator reads it (escaped quotes in the HTML), not Python's repr
    assert "&quot;note&quot;: &quot;Café&quot;" in body
    assert "&quot;sent&quot;: true" in body and "&quot;skipped&quot;: null" in body
    assert "'note'" not in body and "True" not in body


def _client(world):
    from tests.conftest import login_client

    return login_client(world.owner)


def test_owners_retry_skip_and_cancel_from_the_run_page(world, client_for):
    client = client_for(world.manager)
    run = engine.drive(services.run_start(membership=world.owner, workflow="test_permanent").pk)
    refuse = StepRun.objects.get(run=run, step="refuse")
    body = client.get(f"/workflows/runs/{run.pk}/").content.decode()
    assert "Step refuse failed: The creator&#x27;s persona is empty." in body and "Retry" in body
    response = client.post(f"/workflows/steps/{refuse.pk}/skip/", follow=True)
    assert "Step refuse skipped." in response.content.decode()
    assert engine.drive(run.pk).state == RunState.SUCCEEDED
    response = client.post(f"/workflows/steps/{refuse.pk}/retry/", follow=True)
    assert "cannot be retried" in response.content.decode()  # 409-style refusal, shown, not a 500
    open_run = services.run_start(membership=world.owner, workflow="test_chain")
    client.post(f"/workflows/runs/{open_run.pk}/cancel/")
    open_run.refresh_from_db()
    assert open_run.state == RunState.CANCELLED
    assert WorkflowAction.objects.filter(run=open_run, kind="cancel", actor=world.manager.user).exists()
    history = client.get(f"/workflows/runs/{open_run.pk}/").content.decode()
    assert world.manager.user.email in history and "Cancelled" in history


def test_viewers_and_chatters_cannot_start_or_act(world, client_for):
    run = engine.drive(services.run_start(membership=world.owner, workflow="test_permanent").pk)
    refuse = StepRun.objects.get(run=run, step="refuse")
    for role in ("viewer", "chatter"):
        client = client_for(world.member(role))
        assert client.get("/workflows/start/").status_code == 403
        assert client.post("/workflows/start/", {"workflow": "month_end_cost_report"}).status_code == 403
        assert client.post(f"/workflows/steps/{refuse.pk}/retry/").status_code == 403
        assert client.post(f"/workflows/runs/{run.pk}/cancel/").status_code == 403
    assert StepRun.objects.get(pk=refuse.pk).state == "failed"


def test_another_agencys_runs_answer_404(world, other_world, client_for):
    run = engine.drive(services.run_start(membership=world.owner, workflow="test_permanent").pk)
    refuse = StepRun.objects.get(run=run, step="refuse")
    client = client_for(other_world.owner)
    assert client.get(f"/workflows/runs/{run.pk}/").status_code == 404
    assert client.post(f"/workflows/steps/{refuse.pk}/retry/").status_code == 404
    assert client.post(f"/workflows/steps/{refuse.pk}/skip/").status_code == 404
    assert client.post(f"/workflows/runs/{run.pk}/cancel/").status_code == 404
    assert f"#{run.pk}" not in client.get("/workflows/").content.decode()
    assert StepRun.objects.get(pk=refuse.pk).state == "failed"


def test_the_start_form_validates_and_starts_a_built_in(world, client_for):
    client = client_for(world.owner)
    page = client.get("/workflows/start/").content.decode()
    assert "Month-end AI cost report" in page and "Weekly content plan" in page and "test_chain" not in page
    response = client.post("/workflows/start/", {"workflow": "month_end_cost_report", "month": "13-2024"})
    assert response.status_code == 400 and "is not a month" in response.content.decode()
    response = client.post("/workflows/start/", {"workflow": "weekly_content_plan"})
    assert response.status_code == 400 and "Choose the creator to plan for." in response.content.decode()
    response = client.post("/workflows/start/", {"workflow": "no_such"})
    assert response.status_code == 400
    response = client.post("/workflows/start/", {"workflow": "month_end_cost_report", "month": "2025-01"})
    assert response.status_code == 302
    run = engine.drive(int(response["Location"].rstrip("/").rsplit("/", 1)[1]))
    assert run.workflow == "month_end_cost_report" and run.input == {"month": "2025-01"}
    assert run.state == RunState.SUCCEEDED


def test_a_managers_only_run_is_a_404_to_viewers_and_chatters(world, client_for):
    # The month-end cost report holds the agency's AI spend by creator: the cost page's readers only.
    report = services.run_start(membership=world.owner, workflow="month_end_cost_report")
    assert client_for(world.manager).get(f"/workflows/runs/{report.pk}/").status_code == 200
    assert f"#{report.pk}" in client_for(world.manager).get("/workflows/").content.decode()
    for role in ("viewer", "chatter"):
        client = client_for(world.member(role))
        assert client.get(f"/workflows/runs/{report.pk}/").status_code == 404
        assert f"#{report.pk}" not in client.get("/workflows/").content.decode()
        api = token_client(world.member(role), "read")
        assert api.get(f"/api/v1/workflows/runs/{report.pk}").status_code == 404
        assert report.pk not in [run["id"] for run in api.get("/api/v1/workflows/runs").json()["items"]]


def test_a_chatter_reads_only_runs_about_their_assigned_creators(world, client_for):
    mine = services.run_start(membership=world.owner, workflow="test_chain", data={"creator_id": world.creator.pk})
    theirs = services.run_start(
        membership=world.owner, workflow="test_chain", data={"creator_id": world.other_creator.pk}
    )
    agency_wide = services.run_start(membership=world.owner, workflow="test_chain")
    chatter = client_for(world.chatter)
    assert chatter.get(f"/workflows/runs/{mine.pk}/").status_code == 200
    for hidden in (theirs, agency_wide):
        assert chatter.get(f"/workflows/runs/{hidden.pk}/").status_code == 404
    listed = chatter.get("/workflows/").content.decode()
    assert f"#{mine.pk}" in listed and f"#{theirs.pk}" not in listed and f"#{agency_wide.pk}" not in listed
    api = token_client(world.chatter, "read")
    assert [run["id"] for run in api.get("/api/v1/workflows/runs").json()["items"]] == [mine.pk]
    assert api.get(f"/api/v1/workflows/runs/{theirs.pk}/steps").status_code == 404
    # A viewer sees every creator: all three.
    viewer = client_for(world.viewer)
    assert all(viewer.get(f"/workflows/runs/{run.pk}/").status_code == 200 for run in (mine, theirs, agency_wide))


def test_a_start_submitted_twice_starts_one_run(world, client_for):
    client = client_for(world.owner)
    page = client.get("/workflows/start/").content.decode()
    key = page.split('name="request_key" value="')[1].split('"')[0]
    assert len(key) == 32 and "Request key" not in page  # hidden, and new each time the form is drawn
    assert key not in client.get("/workflows/start/").content.decode()
    form = {"workflow": "month_end_cost_report", "month": "2026-10", "request_key": key}
    first = client.post("/workflows/start/", form)
    second = client.post("/workflows/start/", form)  # a double click, or the browser resending
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    assert WorkflowRun.objects.filter(workflow="month_end_cost_report").count() == 1


def test_the_api_answers_a_retried_start_with_the_same_run(world):
    api = token_client(world.owner, "write")
    body = {"workflow": "month_end_cost_report", "input": {"month": "2026-10"}}
    first = api.post("/api/v1/workflows/runs", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/v1/workflows/runs", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    other = api.post("/api/v1/workflows/runs", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert first.status_code == again.status_code == other.status_code == 201
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    reused = api.post("/api/v1/workflows/runs", {"workflow": "nightly_optimization", "input": {}},
                      content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")  # fmt: skip
    assert reused.status_code == 409 and f"#{first.json()['id']}" in error(reused)["message"]
    too_long = api.post("/api/v1/workflows/runs", body, content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY="k" * 65)  # fmt: skip
    assert too_long.status_code == 400 and "request_key" in error(too_long)["fields"]
    assert WorkflowRun.objects.filter(workflow="month_end_cost_report").count() == 2
