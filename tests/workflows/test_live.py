"""The run page's websocket: step state changes reach the page of that run through the event bus,
never another agency's page; outsiders and removed members are shut out; the outbox tail carries
changes made where this process's channel layer does not reach."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts.models import Membership
from apps.core.models import OutboxEvent
from apps.workflows import consumers, engine, services
from apps.workflows.models import StepRun, StepState
from huntaze.asgi import application
from tests.conftest import build_world, login_client
from tests.workflows import sample_workflows  # noqa: F401  (registers the test workflows)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_tail(monkeypatch):
    """Bus events only, unless a test turns the outbox tail on: frames stay predictable."""
    monkeypatch.setattr(consumers, "TAIL_SECONDS", 3600)
    monkeypatch.setattr(consumers, "IDLE_TAIL_SECONDS", 3600)


async def _socket(membership: Membership, run_id: int) -> tuple[WebsocketCommunicator, bool, int | None]:
    def cookie() -> bytes:
        client = login_client(membership)
        return f"sessionid={client.cookies['sessionid'].value}; csrftoken={'a' * 32}".encode()

    headers = [ORIGIN, (b"cookie", await sync_to_async(cookie)())]
    communicator = WebsocketCommunicator(application, f"/ws/workflows/runs/{run_id}/", headers=headers)
    connected, code = await communicator.connect(timeout=15)
    return communicator, connected, code


async def _open(membership: Membership, run_id: int) -> WebsocketCommunicator:
    communicator, connected, code = await _socket(membership, run_id)
    assert connected, code
    first = await communicator.receive_from(timeout=10)  # the run as it is when the socket opens
    assert '<section id="run-body" hx-swap-oob="true"' in first
    return communicator


def _queued(run_id: int) -> int:
    return StepRun.objects.filter(run_id=run_id, state=StepState.QUEUED).order_by("id").values_list("pk", flat=True)[0]


async def _run_one_step(run_id: int) -> str:
    """What a worker does with the run's next queued step (claim, run, store, advance)."""
    return await sync_to_async(lambda: engine.execute(_queued(run_id)))()


async def _latest(communicator) -> str:
    """The page as the last frame left it, once frames stop coming (a claim's frame may come
    before the finish's on a loaded machine)."""
    html = await communicator.receive_from(timeout=10)
    while not await communicator.receive_nothing(timeout=0.5):
        html = await communicator.receive_from(timeout=1)
    return html


async def _expect_closed_4403(communicator) -> None:
    while True:
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            assert output["code"] == 4403
            return


async def test_a_step_state_change_reaches_that_runs_page_and_no_other_agencys():
    world = await sync_to_async(build_world)("Live runs")
    rival = await sync_to_async(build_world)("Rival runs")
    start = sync_to_async(services.run_start)
    run = await start(membership=world.owner, workflow="test_chain", data={"start": 3})
    rival_run = await start(membership=rival.owner, workflow="test_chain", data={"start": 3})
    viewer = await _open(world.viewer, run.pk)
    outsider = await _open(rival.owner, rival_run.pk)

    assert await _run_one_step(run.pk) == "succeeded"
    html = await _latest(viewer)
    assert 'id="run-body" hx-swap-oob="true"' in html
    # "first" succeeded and "double" is queued after it; the viewer sees no buttons.
    assert html.count('class="wf-row wf-succeeded"') == 1 and html.count('class="wf-row wf-queued"') == 1
    assert "Retry" not in html and "Cancel run" not in html
    # The rival agency's page of its own run hears nothing of it.
    assert await outsider.receive_nothing(timeout=0.6)

    await _run_one_step(run.pk)
    await _run_one_step(run.pk)
    html = await _latest(viewer)
    assert html.count('class="wf-row wf-succeeded"') == 3 and "Succeeded" in html
    assert await outsider.receive_nothing(timeout=0.3)
    await viewer.disconnect()
    await outsider.disconnect()


async def test_an_owner_sees_a_failed_step_with_its_error_escaped_and_buttons_that_post():
    world = await sync_to_async(build_world)("Failures")
    run = await sync_to_async(services.run_start)(membership=world.owner, workflow="test_permanent")
    owner = await _open(world.owner, run.pk)
    assert await _run_one_step(run.pk) == "succeeded"
    await _latest(owner)
    assert await _run_one_step(run.pk) == "failed"
    html = await _latest(owner)
    assert 'class="wf-row wf-failed"' in html and "Retry" in html
    assert 'name="csrfmiddlewaretoken"' in html  # the buttons post with the page's form token
    assert "The creator&#x27;s persona is empty." in html  # step errors are escaped
    await owner.disconnect()


async def test_a_redelivered_event_draws_nothing_new():
    world = await sync_to_async(build_world)("Redelivered")
    run = await sync_to_async(services.run_start)(membership=world.owner, workflow="test_chain")
    owner = await _open(world.owner, run.pk)
    await _run_one_step(run.pk)
    await _latest(owner)
    # A dispatcher that died after the fan-out sends the same event again: nothing new is drawn.
    from channels.layers import get_channel_layer

    from apps.core.outbox import group_message
    from apps.workflows.events import run_group

    last = await OutboxEvent.objects.filter(kind="workflow.run_changed").order_by("-id").afirst()
    await get_channel_layer().group_send(run_group(run.pk), group_message(last))
    assert await owner.receive_nothing(timeout=0.5)
    await owner.disconnect()


async def test_another_agencys_run_and_a_missing_one_are_refused_with_4403():
    world = await sync_to_async(build_world)("Owner of the run")
    rival = await sync_to_async(build_world)("Snooper")
    run = await sync_to_async(services.run_start)(membership=world.owner, workflow="test_chain")
    for run_id in (run.pk, run.pk + 10_000):
        _communicator, connected, code = await _socket(rival.owner, run_id)
        assert not connected and code == 4403


async def test_a_removed_member_gets_no_more_frames():
    world = await sync_to_async(build_world)("Removed")
    run = await sync_to_async(services.run_start)(membership=world.owner, workflow="test_chain")
    viewer = await _open(world.viewer, run.pk)
    await Membership.objects.filter(pk=world.viewer.pk).adelete()
    await _run_one_step(run.pk)
    await _expect_closed_4403(viewer)


async def test_the_outbox_tail_shows_changes_the_channel_layer_never_carried(settings, monkeypatch):
    """A worker on the embedded default shares no channel layer with the web process: with no
    dispatch at all (sweep mode, no sweep), the socket still finds the run's events in the outbox."""
    settings.EVENTS_DISPATCH_ON_COMMIT = "sweep"
    monkeypatch.setattr(consumers, "TAIL_SECONDS", 0.2)
    world = await sync_to_async(build_world)("Tail")
    run = await sync_to_async(services.run_start)(membership=world.owner, workflow="test_chain")
    owner = await _open(world.owner, run.pk)
    assert await owner.receive_nothing(timeout=0.5)  # the first reads take a baseline
    await _run_one_step(run.pk)
    html = await _latest(owner)
    assert html.count('class="wf-row wf-succeeded"') == 1
    assert not await OutboxEvent.objects.filter(dispatched_at__isnull=False).aexists()
    await owner.disconnect()


async def test_a_failed_runs_page_tails_slowly_until_a_member_reopens_it(settings, monkeypatch):
    """Once the run fails, only a member's action changes it: the page reads the outbox only every
    IDLE_TAIL_SECONDS (a change only the outbox carries is not drawn at once), and a retry,
    published to the run's group, redraws it and puts the tail back on its short period."""
    settings.EVENTS_DISPATCH_ON_COMMIT = "sweep"
    monkeypatch.setattr(consumers, "TAIL_SECONDS", 0.2)
    world = await sync_to_async(build_world)("Tail stops")
    run = await sync_to_async(services.run_start)(membership=world.owner, workflow="test_permanent")
    owner = await _open(world.owner, run.pk)
    assert await _run_one_step(run.pk) == "succeeded"
    assert await _run_one_step(run.pk) == "failed"
    html = await _latest(owner)  # drawn from the tail: nothing was dispatched
    assert 'class="wf-row wf-failed"' in html and "Failed" in html

    def outbox_only_change() -> None:
        from apps.workflows.events import run_changed

        StepRun.objects.filter(run_id=run.pk, state=StepState.FAILED).update(error="Changed behind the page.")
        run_changed(run_id=run.pk, agency_id=run.agency_id)

    await sync_to_async(outbox_only_change)()
    assert await owner.receive_nothing(timeout=1.0)  # five tail periods: no read, no redraw

    settings.EVENTS_DISPATCH_ON_COMMIT = "inline"  # the member's retry reaches the group
    failed = await StepRun.objects.aget(run_id=run.pk, state=StepState.FAILED)
    await sync_to_async(services.step_retry)(membership=world.owner, step_run=failed)
    html = await _latest(owner)
    assert 'class="wf-row wf-queued"' in html and "Changed behind the page." in html
    settings.EVENTS_DISPATCH_ON_COMMIT = "sweep"
    assert await _run_one_step(run.pk) == "failed"
    html = await _latest(owner)  # the tail is back: the second failure arrives without a dispatch
    assert 'class="wf-row wf-failed"' in html
    await owner.disconnect()


async def test_a_finished_runs_page_still_picks_up_a_change_no_group_message_carried(settings, monkeypatch):
    """A retry dispatched from a worker (embedded default: no shared channel layer) reaches an open
    page of a failed run through the slow tail."""
    settings.EVENTS_DISPATCH_ON_COMMIT = "sweep"
    monkeypatch.setattr(consumers, "TAIL_SECONDS", 0.2)
    monkeypatch.setattr(consumers, "IDLE_TAIL_SECONDS", 0.6)
    world = await sync_to_async(build_world)("Slow tail")
    run = await sync_to_async(services.run_start)(membership=world.owner, workflow="test_permanent")
    assert await _run_one_step(run.pk) == "succeeded"
    assert await _run_one_step(run.pk) == "failed"
    owner = await _open(world.owner, run.pk)  # opened on the failed run: no fast tail

    failed = await StepRun.objects.aget(run_id=run.pk, state=StepState.FAILED)
    await sync_to_async(services.step_retry)(membership=world.owner, step_run=failed)  # nothing dispatched
    html = await _latest(owner)
    assert 'class="wf-row wf-queued"' in html
    await owner.disconnect()
