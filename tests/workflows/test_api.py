"""API: definitions, starting runs, reading runs and step runs, retry/skip/cancel; roles, 404 for
another agency's runs, 409 for an action that does not fit, 400/422 naming the field."""

from __future__ import annotations

import pytest

from apps.workflows import engine, services
from apps.workflows.models import RunState, StepRun, WorkflowRun
from tests.messaging.api_helpers import error, token_client
from tests.workflows import sample_workflows  # noqa: F401

pytestmark = pytest.mark.django_db
JSON = "application/json"
BASE = "/api/v1/workflows"


def test_definitions_list_the_built_ins_with_their_steps(world):
    body = token_client(world.viewer, "read").get(f"{BASE}/definitions").json()
    names = {item["name"]: item for item in body}
    assert {"nightly_optimization", "month_end_cost_report", "weekly_content_plan"} <= set(names)
    assert not any(name.startswith("test_") for name in names)
    captions = next(s for s in names["weekly_content_plan"]["steps"] if s["name"] == "captions")
    assert captions["fan_out"] is True and captions["depends_on"] == ["ideas"]


def test_start_read_and_act_on_runs(world):
    client = token_client(world.owner, "write")
    response = client.post(f"{BASE}/runs", {"workflow": "month_end_cost_report", "input": {"month": "2025-02"}},
                           content_type=JSON)  # fmt: skip
    assert response.status_code == 201 and response.json()["state"] == "running"
    run_id = response.json()["id"]
    engine.drive(run_id)
    body = client.get(f"{BASE}/runs/{run_id}").json()
    assert body["state"] == "succeeded" and [s["step"] for s in body["steps"]] == ["notify", "spend"]
    assert body["output"]["notify"]["report"]["month"] == "2025-02"
    assert client.get(f"{BASE}/runs?state=succeeded").json()["count"] == 1
    assert client.get(f"{BASE}/runs?state=failed").json()["count"] == 0
    assert client.get(f"{BASE}/runs?state=bogus").status_code == 422
    assert len(client.get(f"{BASE}/runs/{run_id}/steps").json()) == 2

    failed = engine.drive(services.run_start(membership=world.owner, workflow="test_permanent").pk)
    refuse = StepRun.objects.get(run=failed, step="refuse")
    assert client.post(f"{BASE}/steps/{refuse.pk}/skip").json()["state"] == "skipped"
    assert client.post(f"{BASE}/steps/{refuse.pk}/retry").status_code == 409
    assert engine.drive(failed.pk).state == RunState.SUCCEEDED
    conflict = client.post(f"{BASE}/runs/{failed.pk}/cancel")
    assert conflict.status_code == 409 and "already succeeded" in error(conflict)["message"]


def test_bad_input_is_a_clear_4xx(world):
    client = token_client(world.owner, "write")
    response = client.post(f"{BASE}/runs", {"workflow": "nope"}, content_type=JSON)
    assert response.status_code == 422 and list(error(response)["fields"]) == ["workflow"]
    response = client.post(f"{BASE}/runs", {"workflow": "weekly_content_plan", "input": {"creator_id": "x"}},
                           content_type=JSON)  # fmt: skip
    assert response.status_code == 400 and "creator_id" in error(response)["fields"]
    response = client.post(f"{BASE}/runs", {"workflow": "month_end_cost_report", "input": "2025-01"}, content_type=JSON)
    assert response.status_code == 422
    assert client.get(f"{BASE}/runs/0").status_code == 422


def test_roles_and_other_agencies(world, other_world):
    run = engine.drive(services.run_start(membership=world.owner, workflow="test_permanent").pk)
    refuse = StepRun.objects.get(run=run, step="refuse")
    reader = token_client(world.viewer, "read")
    assert reader.get(f"{BASE}/runs/{run.pk}").status_code == 200
    assert reader.post(f"{BASE}/steps/{refuse.pk}/retry").status_code == 403
    assert reader.post(f"{BASE}/runs", {"workflow": "month_end_cost_report"}, content_type=JSON).status_code == 403
    outsider = token_client(other_world.owner, "admin")
    assert outsider.get(f"{BASE}/runs/{run.pk}").status_code == 404
    assert outsider.get(f"{BASE}/runs/{run.pk}/steps").status_code == 404
    assert outsider.post(f"{BASE}/steps/{refuse.pk}/retry").status_code == 404
    assert outsider.post(f"{BASE}/runs/{run.pk}/cancel").status_code == 404
    assert outsider.get(f"{BASE}/runs").json()["count"] == 0
    assert StepRun.objects.get(pk=refuse.pk).state == "failed"


@pytest.mark.parametrize(
    "value, problem",
    [
        ('{"x": "\\ud800"}', "“x” cannot contain an unpaired surrogate"),
        ('{"\\udfff": 1}', "the key “\\udfff” cannot contain an unpaired surrogate"),
        ('{"plan": [{"note": "a\\udc00b"}]}', "“plan[0].note” cannot contain an unpaired surrogate"),
        ('{"n": NaN}', "“n” must be a finite number"),
    ],
)
def test_input_postgresql_cannot_store_is_a_400_on_input_and_starts_nothing(world, value, problem):
    """A lone surrogate passed the JSON check and answered 500 from PostgreSQL's jsonb (SQLite
    stored it)."""
    client = token_client(world.owner, "write")
    body = '{"workflow": "nightly_optimization", "input": ' + value + "}"
    response = client.generic("POST", f"{BASE}/runs", body, content_type=JSON)
    assert response.status_code == 400 and list(error(response)["fields"]) == ["input"]
    assert problem in error(response)["message"]
    assert not WorkflowRun.objects.exists()


@pytest.mark.parametrize("key", ["k\x00ey", "k\x07ey", "k\ney"])
def test_an_idempotency_key_with_control_characters_is_a_400_and_starts_nothing(world, key):
    """A NUL in the key answered 500 from PostgreSQL (SQLite stored it); other control
    characters would be stored as a key no one can send again."""
    client = token_client(world.owner, "write")
    body = {"workflow": "nightly_optimization", "input": {}}
    response = client.post(f"{BASE}/runs", body, content_type=JSON, HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400 and list(error(response)["fields"]) == ["request_key"]
    assert "printable" in error(response)["message"]
    assert not WorkflowRun.objects.exists()
