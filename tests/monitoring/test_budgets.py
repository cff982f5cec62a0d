"""AI budgets: the forms and their errors, threshold alerts once per month, and the hard stop
through the real gateway (the OpenAI SDK against the loopback fake) with concurrent requests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.ai import gateway
from apps.ai.ledger import ledger
from apps.ai.models import AIRequestLog
from apps.ai.types import AIError, AIRequest, ErrorKind, Message, StreamComplete, StreamError
from apps.monitoring.budgets import budgets_evaluate
from apps.monitoring.models import Alert, Budget
from tests.fakes.llm_server import Fault

D = Decimal

# --- Forms -------------------------------------------------------------------------------------------

NEW = "/monitoring/cost/budgets/new/"


def edit_url(budget: Budget) -> str:
    return f"/monitoring/cost/budgets/{budget.pk}/edit/"


def delete_url(budget: Budget) -> str:
    return f"/monitoring/cost/budgets/{budget.pk}/delete/"


def form(**fields) -> dict:
    return {"creator": "", "monthly_usd": "25.00", "thresholds": "50, 80, 100", **fields}


@pytest.mark.django_db
def test_an_owner_creates_an_agency_budget_and_a_creator_budget(world, client_for):
    client = client_for(world.owner)
    assert client.get(NEW).status_code == 200
    response = client.post(NEW, form(hard_stop="on"))
    assert response.status_code == 302
    response = client.post(NEW, form(creator=world.creator.pk, monthly_usd="5", thresholds="90,  50"))
    assert response.status_code == 302
    budgets = {b.creator_id: b for b in Budget.objects.filter(agency=world.agency)}
    assert budgets[None].monthly_usd == D("25.00") and budgets[None].hard_stop
    assert budgets[None].thresholds == [50, 80, 100]
    assert budgets[world.creator.pk].thresholds == [50, 90] and not budgets[world.creator.pk].hard_stop


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"monthly_usd": "0"}, "monthly_usd", "more than $0"),
        ({"monthly_usd": "-3"}, "monthly_usd", "more than $0"),
        ({"monthly_usd": "abc"}, "monthly_usd", "Enter a number"),
        ({"thresholds": "0, 50"}, "thresholds", "from 1 to 1000"),
        ({"thresholds": "50, 1001"}, "thresholds", "from 1 to 1000"),
        ({"thresholds": "fifty"}, "thresholds", "not a whole percentage"),
        ({"thresholds": "50.5"}, "thresholds", "not a whole percentage"),
    ],
)
def test_bad_budget_input_is_a_field_error(world, client_for, fields, field, message):
    response = client_for(world.manager).post(NEW, form(**fields))
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not Budget.objects.exists()


@pytest.mark.django_db
def test_a_creator_of_another_agency_is_refused(world, other_world, client_for):
    response = client_for(world.owner).post(NEW, form(creator=other_world.creator.pk))
    assert response.status_code == 400
    assert "creator" in response.context["form"].errors
    assert not Budget.objects.exists()


@pytest.mark.django_db
def test_one_budget_per_creator_and_one_agency_wide_with_a_clear_error(world, client_for):
    client = client_for(world.owner)
    Budget.objects.create(agency=world.agency, monthly_usd=D(10), thresholds=[50])
    Budget.objects.create(agency=world.agency, creator=world.creator, monthly_usd=D(5), thresholds=[50])
    response = client.post(NEW, form())
    assert "already has an agency-wide budget" in response.context["form"].errors["creator"][0]
    response = client.post(NEW, form(creator=world.creator.pk))
    assert "Velvet Star already has" in response.context["form"].errors["creator"][0]
    assert Budget.objects.count() == 2


@pytest.mark.django_db
def test_edit_and_delete(world, client_for):
    budget = Budget.objects.create(agency=world.agency, monthly_usd=D(10), thresholds=[50])
    client = client_for(world.owner)
    assert client.get(edit_url(budget)).status_code == 200
    assert client.post(edit_url(budget), form(monthly_usd="12.50", thresholds="")).status_code == 302
    budget.refresh_from_db()
    assert budget.monthly_usd == D("12.50") and budget.thresholds == []
    assert client.get(delete_url(budget)).status_code == 405
    assert client.post(delete_url(budget)).status_code == 302
    assert not Budget.objects.exists()


@pytest.mark.django_db
def test_another_tenants_budget_is_404_and_chatters_and_viewers_get_403(world, other_world, client_for):
    theirs = Budget.objects.create(agency=other_world.agency, monthly_usd=D(10), thresholds=[50])
    client = client_for(world.owner)
    assert client.get(edit_url(theirs)).status_code == 404
    assert client.post(edit_url(theirs), form()).status_code == 404
    assert client.post(delete_url(theirs)).status_code == 404
    assert Budget.objects.filter(pk=theirs.pk).exists()
    ours = Budget.objects.create(agency=world.agency, monthly_usd=D(10), thresholds=[50])
    for role in ("chatter", "viewer"):
        member = client_for(world.member(role))
        assert member.get(NEW).status_code == 403
        assert member.post(NEW, form()).status_code == 403
        assert member.post(edit_url(ours), form(monthly_usd="1")).status_code == 403
        assert member.post(delete_url(ours)).status_code == 403
    ours.refresh_from_db()
    assert ours.monthly_usd == D(10)


# --- Threshold alerts --------------------------------------------------------------------------------


def spend(agency, amount: str, when: datetime, creator=None) -> None:
    AIRequestLog.objects.create(agency=agency, creator=creator, feature="studio.caption", provider="openai",
                                model="gpt-4o-mini", cost_usd=D(amount), created_at=when)  # fmt: skip


def budget_alerts(budget) -> list[tuple[str, str, str]]:
    return sorted(Alert.objects.filter(budget=budget).values_list("key", "severity", "state"))


@pytest.mark.django_db
def test_each_threshold_fires_once_a_month(world):
    budget = Budget.objects.create(agency=world.agency, monthly_usd=D(10), thresholds=[50, 80, 100])
    creator_budget = Budget.objects.create(
        agency=world.agency, creator=world.creator, monthly_usd=D(2), thresholds=[50]
    )
    may = datetime(2026, 5, 10, tzinfo=UTC)
    star = f"budget:{creator_budget.pk}:{world.creator.pk}:2026-05:50"  # her budget's scope is hers
    spend(world.agency, "6.00", may)
    budgets_evaluate(now=may)
    assert budget_alerts(budget) == [(f"budget:{budget.pk}:agency:2026-05:50", "warning", "firing")]
    assert budget_alerts(creator_budget) == []

    budgets_evaluate(now=may)  # nothing new
    spend(world.agency, "3.00", may, creator=world.creator)
    budgets_evaluate(now=may)
    assert [key for key, _, _ in budget_alerts(budget)] == [
        f"budget:{budget.pk}:agency:2026-05:50", f"budget:{budget.pk}:agency:2026-05:80"
    ]  # fmt: skip
    assert budget_alerts(creator_budget) == [(star, "warning", "firing")]

    spend(world.agency, "1.50", may)
    budgets_evaluate(now=may)
    assert (f"budget:{budget.pk}:agency:2026-05:100", "page", "firing") in budget_alerts(budget)
    assert Alert.objects.filter(budget=budget).count() == 3

    # Raised: the alerts resolve; lowered again in the same month: they do not fire a second time.
    Budget.objects.filter(pk=budget.pk).update(monthly_usd=D(100))
    budgets_evaluate(now=may)
    assert {state for _, _, state in budget_alerts(budget)} == {"resolved"}
    Budget.objects.filter(pk=budget.pk).update(monthly_usd=D(10))
    budgets_evaluate(now=may)
    assert Alert.objects.filter(budget=budget).count() == 3

    # A new month starts from nothing; last month's creator alert is resolved.
    june = datetime(2026, 6, 1, 0, 5, tzinfo=UTC)
    budgets_evaluate(now=june)
    assert Alert.objects.filter(budget=budget, key__contains="2026-06").count() == 0
    assert budget_alerts(creator_budget) == [(star, "warning", "resolved")]


@pytest.mark.django_db
def test_a_budget_moved_to_a_creator_fires_that_creators_thresholds_and_resolves_the_old_scopes(
    world, client_for, eager_celery, django_capture_on_commit_callbacks
):
    from apps.notifications.models import Notification

    budget = Budget.objects.create(agency=world.agency, monthly_usd=D(10), thresholds=[50])
    now = timezone.now()
    spend(world.agency, "6.00", now, creator=world.other_creator)
    spend(world.agency, "5.50", now, creator=world.creator)
    with django_capture_on_commit_callbacks(execute=True):
        budgets_evaluate(now=now)
    assert [(key, state) for key, _, state in budget_alerts(budget)] == [
        (f"budget:{budget.pk}:agency:{now:%Y-%m}:50", "firing")
    ]

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(world.owner).post(edit_url(budget), form(creator=world.creator.pk, monthly_usd="10"))
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        budgets_evaluate(now=now)  # Velvet Star's own $5.50 is past 50 % of $10
    assert set(budget_alerts(budget)) == {
        (f"budget:{budget.pk}:agency:{now:%Y-%m}:50", "warning", "resolved"),
        (f"budget:{budget.pk}:{world.creator.pk}:{now:%Y-%m}:50", "warning", "firing"),
    }
    titles = sorted(Notification.objects.filter(user=world.owner.user).values_list("title", flat=True))
    assert titles == [
        "Resolved: AI budget 50% used: Velvet",
        "Warning: AI budget 50% used: Velvet",
        "Warning: AI budget 50% used: Velvet Star",
    ]


@pytest.mark.django_db(transaction=True)
async def test_a_call_admitted_last_month_that_settles_this_month_counts_for_last_month(world):
    """A call admitted at 23:59 UTC on the month's last day settles after midnight: its cost
    crosses last month's threshold, and this month (nothing spent yet) fires nothing."""
    from apps.monitoring.budgets import _Admission, _config, _Hold, month_start

    this_month = month_start(timezone.now())
    last_month = month_start(this_month - timedelta(days=1))
    last_day = datetime(this_month.year, this_month.month, 1, tzinfo=UTC) - timedelta(minutes=1)
    budget = await sync_to_async(_setup_at)(world, limit="10", spent="4.99", when=last_day)
    [entry] = await _config(world.agency.pk)
    settle = _Admission(agency_id=world.agency.pk, month=last_month, holds=[_Hold(entry)])
    await settle(D("0.02"))
    assert await sync_to_async(budget_alerts)(budget) == [
        (f"budget:{budget.pk}:agency:{last_month:%Y-%m}:50", "warning", "firing")
    ]


def _setup_at(world, *, limit: str, spent: str, when: datetime) -> Budget:
    spend(world.agency, spent, when)
    return Budget.objects.create(agency=world.agency, monthly_usd=D(limit), thresholds=[50, 80, 100])


@pytest.mark.django_db
def test_the_check_budgets_task_is_registered_under_the_monitoring_tasks_name():
    from apps.monitoring.budget_tasks import check_budgets

    assert check_budgets.name == "apps.monitoring.tasks.check_budgets"
    assert check_budgets.run() == {"fired": 0}


# --- The hard stop through the gateway -----------------------------------------------------------------

# gpt-4o-mini at $0.15 / $0.60 per million tokens: 100 in + 1,000 out = $0.000615 a call.
CALL_COST = D("0.000615")


def ask(world, text: str = "Write a caption", **options) -> AIRequest:
    return AIRequest(
        feature="studio.caption", messages=[Message("user", text)], agency_id=world.agency.pk,
        creator_id=world.creator.pk, max_tokens=1000, **options,
    )  # fmt: skip


def _setup(world, *, limit: str, spent: str, hard_stop: bool, creator=None) -> Budget:
    spend(world.agency, spent, timezone.now(), creator=creator)
    return Budget.objects.create(agency=world.agency, creator=creator, monthly_usd=D(limit),
                                 thresholds=[50, 80, 100], hard_stop=hard_stop)  # fmt: skip


async def _many(world, n: int) -> list:
    """n different requests at once (identical ones would share one upstream call)."""
    requests = [ask(world, f"Write caption number {i}") for i in range(n)]
    return await asyncio.gather(*(gateway.generate(request) for request in requests), return_exceptions=True)


async def _month_spend(world) -> Decimal:
    await ledger.aflush()
    total = await sync_to_async(
        lambda: sum(AIRequestLog.objects.filter(agency=world.agency).values_list("cost_usd", flat=True), D(0))
    )()
    return total


@pytest.mark.django_db(transaction=True)
async def test_a_used_up_budget_lets_at_most_one_concurrent_request_over_and_refuses_the_rest(world, remote):
    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000}, latency=0.2)
    budget = await sync_to_async(_setup)(world, limit="0.01", spent="0.0095", hard_stop=True)

    results = await _many(world, 8)

    answers = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, AIError)]
    assert len(answers) == 1, results
    assert len(refused) == 7
    for error in refused:
        assert error.kind == ErrorKind.RATE_LIMIT and not error.retryable
        assert "monthly AI budget for your agency is used up" in error.message
    assert remote.count("openai") == 1
    total = await _month_spend(world)
    assert budget.monthly_usd < total <= budget.monthly_usd + CALL_COST
    # The next request is refused at once, without reaching the provider.
    with pytest.raises(AIError, match="used up"):
        await gateway.generate(ask(world))
    assert remote.count("openai") == 1


@pytest.mark.django_db(transaction=True)
async def test_near_the_limit_concurrent_requests_overshoot_by_at_most_one_call(world, remote):
    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000}, latency=0.1)
    budget = await sync_to_async(_setup)(world, limit="0.01", spent="0.0080", hard_stop=True)

    results = await _many(world, 12)

    answers = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, AIError)]
    assert len(answers) + len(refused) == 12
    assert all("used up" in error.message for error in refused)
    # $0.002 left fits three calls at once; a fourth may go over, never more.
    assert 3 <= len(answers) <= 4, results
    total = await _month_spend(world)
    assert total <= budget.monthly_usd + CALL_COST
    assert remote.count("openai") == len(answers)


@pytest.mark.django_db(transaction=True)
async def test_a_creator_budget_stops_only_that_creator(world, remote):
    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000})
    await sync_to_async(_setup)(world, limit="0.01", spent="0.01", hard_stop=True, creator=world.creator)
    with pytest.raises(AIError, match="monthly AI budget for Velvet Star is used up"):
        await gateway.generate(ask(world))
    other = ask(world)
    other.creator_id = world.other_creator.pk
    assert (await gateway.generate(other)).cost_usd == CALL_COST


@pytest.mark.django_db(transaction=True)
async def test_a_stream_settles_its_cost_so_the_next_request_is_refused(world, remote):
    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000})
    await sync_to_async(_setup)(world, limit="0.01", spent="0.0095", hard_stop=True)
    events = [event async for event in gateway.stream(ask(world))]
    assert isinstance(events[-1], StreamComplete)
    with pytest.raises(AIError, match="used up"):
        await gateway.generate(ask(world))


@pytest.mark.django_db(transaction=True)
async def test_over_the_limit_without_a_hard_stop_requests_go_on_and_alerts_fire_once(world, remote):
    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000})
    budget = await sync_to_async(_setup)(world, limit="0.01", spent="0.0095", hard_stop=False)

    results = await _many(world, 5)

    assert all(not isinstance(r, BaseException) for r in results), results
    assert remote.count("openai") == 5
    keys = await sync_to_async(lambda: sorted(Alert.objects.filter(budget=budget).values_list("key", "severity")))()
    month = f"{timezone.now():%Y-%m}"
    assert keys == [
        (f"budget:{budget.pk}:agency:{month}:100", "page"),
        (f"budget:{budget.pk}:agency:{month}:50", "warning"),
        (f"budget:{budget.pk}:agency:{month}:80", "warning"),
    ]


# --- The gateway's settle hook -----------------------------------------------------------------------

SETTLED: list = []


def recording_check(request: AIRequest):
    """A budget check for the hook's own test: answers a settle that records the cost."""
    if request.feature == "test.refuse":
        raise AIError(ErrorKind.RATE_LIMIT, "refused by the test check", retryable=False)
    return lambda cost: SETTLED.append((request.feature, cost))


@pytest.mark.django_db(transaction=True)
async def test_the_gateway_settles_each_call_once_with_its_ledger_cost(world, remote, settings):
    settings.AI_BUDGET_CHECKS = ["tests.monitoring.test_budgets.recording_check"]
    SETTLED.clear()
    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000})
    await gateway.generate(ask(world))
    [event async for event in gateway.stream(ask(world))]
    remote.add_fault(Fault("status", status=400))
    with pytest.raises(AIError):
        await gateway.generate(ask(world))
    with pytest.raises(AIError, match="refused by the test check"):
        await gateway.generate(AIRequest(feature="test.refuse", messages=[Message("user", "hi")]))
    settled = list(SETTLED)
    assert settled == [("studio.caption", CALL_COST), ("studio.caption", CALL_COST), ("studio.caption", D(0))]


# --- Review fixes: nothing leaks, cut-short streams count, scope changes, stale config, alerts --------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("spent", ["0.0090", "0.0097"])  # room for a reservation; only through the lock
async def test_requests_cancelled_while_being_admitted_leave_no_reservation_or_lock_behind(
    world, remote, settings, spent
):
    """Clients that go away at every moment of the admission must give back what they took:
    afterwards the next request is admitted at once instead of waiting and being refused "busy"."""
    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000}, latency=0.3)
    await sync_to_async(_setup)(world, limit="0.01", spent=spent, hard_stop=True)
    for step in range(40):
        task = asyncio.create_task(gateway.generate(ask(world, f"Cancelled caption {step}")))
        await asyncio.sleep(step * 0.00025)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    settings.AI_BUDGET_WAIT_SECONDS = 0.5
    # Room for one call; a leaked reservation or lock would make it wait and be refused "busy".
    response = await gateway.generate(ask(world, "Still room for one"))
    assert response.cost_usd == CALL_COST


LONG_REPLY = "Here is a long caption for your fans, with plenty of words in it. " * 40


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("ending", ["cancelled", "dropped"])
async def test_a_stream_cut_short_is_charged_its_estimate_so_the_hard_stop_holds(world, remote, ending):
    """A member who closes the tab mid-answer (or a provider that drops the stream) still spent
    money: the estimate (prompt + text received so far) goes to the ledger row and the budget."""
    remote.configure(reply_text=LONG_REPLY, chunk_size=30)
    if ending == "dropped":
        remote.add_fault(Fault("drop_mid_stream", after_chunks=40))
    await sync_to_async(_setup)(world, limit="0.01", spent="0.0099", hard_stop=True)
    received = ""
    events = gateway.stream(ask(world))
    async for event in events:
        if isinstance(event, StreamError):
            assert event.partial_text == received
            break
        received += event.text
        if ending == "cancelled" and len(received) >= 1200:
            break
    await events.aclose()
    assert 1000 <= len(received) < len(LONG_REPLY)

    await ledger.aflush()
    row = await AIRequestLog.objects.filter(feature="studio.caption", streamed=True).aget()
    assert row.error_kind == ("CANCELLED" if ending == "cancelled" else "NETWORK_ERROR")
    # ~400 output tokens at $0.60 per million: more than the $0.0001 that was left.
    assert D("0.0002") < row.cost_usd < D("0.0006") and row.output_tokens >= len(received) // 3
    with pytest.raises(AIError, match="used up"):
        await gateway.generate(ask(world, "Another caption"))


@pytest.mark.django_db(transaction=True)
async def test_moving_a_budget_to_another_scope_counts_that_scopes_spend_only(world, remote):
    """An agency-wide budget used up by another creator, moved to Velvet Star (who spent almost
    nothing): her requests go through; moved back to agency-wide: refused again."""
    from apps.monitoring.budgets import budget_update

    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000})
    budget = await sync_to_async(_setup)(world, limit="0.01", spent="0.0099", hard_stop=True,
                                         creator=world.other_creator)  # fmt: skip
    await sync_to_async(Budget.objects.filter(pk=budget.pk).update)(creator=None)
    budget = await Budget.objects.aget(pk=budget.pk)
    await gateway.generate(ask(world))  # the last one that fits
    with pytest.raises(AIError, match="for your agency is used up"):
        await gateway.generate(ask(world, "Refused"))
    await ledger.aflush()

    def move(creator) -> None:
        budget_update(membership=world.owner, budget=budget, creator=creator, monthly_usd=D("0.01"),
                      thresholds=[50, 80, 100], hard_stop=True)  # fmt: skip

    await sync_to_async(move)(world.creator)
    assert (await gateway.generate(ask(world, "Hers"))).cost_usd == CALL_COST
    await ledger.aflush()
    await sync_to_async(move)(None)
    with pytest.raises(AIError, match="for your agency is used up"):
        await gateway.generate(ask(world, "Refused again"))


@pytest.mark.django_db(transaction=True)
async def test_seeding_again_after_the_mark_was_lost_does_not_count_the_ledger_twice(world, remote):
    """Redis may evict the "seeded" mark while keeping the counter: seeding again must not add
    the ledger's total a second time (the budget would stop at half its limit)."""
    from apps.core.shared import shared_state
    from apps.monitoring.budgets import _seeded_key, _seeded_memo, budget_month_spend, month_start

    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000})
    budget = await sync_to_async(_setup)(world, limit="0.01", spent="0.0060", hard_stop=True)
    await gateway.generate(ask(world))
    await ledger.aflush()
    month = month_start(timezone.now())
    await shared_state().delete(_seeded_key({"id": budget.pk, "creator_id": None}, month))  # evicted
    _seeded_memo.clear()  # and another process, which never saw it
    assert (await gateway.generate(ask(world, "Still fits"))).cost_usd == CALL_COST
    await ledger.aflush()
    ledger_total = await _month_spend(world)
    shown = await sync_to_async(budget_month_spend)(budget, ledger_usd=ledger_total, month=month)
    assert shown == ledger_total == D("0.0060") + 2 * CALL_COST


@pytest.mark.django_db(transaction=True)
def test_moving_a_budget_to_another_agency_in_the_admin_frees_the_old_agency_at_once(world, other_world, remote):
    from django.contrib import admin
    from django.db import transaction

    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000})
    budget = _setup(world, limit="0.01", spent="0.02", hard_stop=True)
    with pytest.raises(AIError, match="used up"):
        gateway.generate_sync(ask(world))  # the agency's budgets are cached now
    budget.agency = other_world.agency
    with transaction.atomic():  # as the admin's change view does
        admin.site._registry[Budget].save_model(None, budget, None, True)
    assert gateway.generate_sync(ask(world)).cost_usd == CALL_COST


@pytest.mark.django_db(transaction=True)
async def test_threshold_alerts_are_delivered_by_a_task_not_on_the_ai_request(world, remote):
    """The request that crosses 50 % only records the alert and queues its delivery; the owners
    hear of it when the dispatch_alert task runs."""
    from apps.monitoring.tasks import dispatch_alert
    from apps.notifications.models import Notification

    remote.configure(usage_override={"input_tokens": 100, "output_tokens": 1000})
    await sync_to_async(_setup)(world, limit="0.01", spent="0.0049", hard_stop=False)
    await gateway.generate(ask(world))
    alert = await Alert.objects.aget()
    assert alert.key.endswith(":50")
    assert await Notification.objects.acount() == 0  # nothing sent while the member waited
    await sync_to_async(dispatch_alert)(alert.pk, "alert.fired")
    assert {n.user_id async for n in Notification.objects.all()} == {world.owner.user_id, world.manager.user_id}
