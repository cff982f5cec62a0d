"""API, websocket and task monitoring through the real stacks: requests through every middleware,
websocket sessions through the project's ASGI application, Celery tasks with their signals, the AI
gateway's built-in provider and the delivery pipeline's simulated platform; the metrics go through
the real database sink and are read back by the overview's tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from celery import shared_task
from celery.exceptions import Retry
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import include, path

from apps.core import metrics
from apps.monitoring import api_stats
from apps.monitoring.asgi import close_code_label
from apps.monitoring.middleware import route_label
from apps.monitoring.models import MetricSample
from tests.conftest import build_world, login_client

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOUR_AGO = timedelta(hours=1)


def recorded(name: str) -> list[tuple[dict, int, float]]:
    """Flush the metrics buffer through the configured sinks (the database) and answer the minute
    rows of ``name`` as (dimensions, count, sum)."""
    metrics.flush()
    return [
        (row.dimensions, row.count, row.sum)
        for row in MetricSample.objects.filter(name=name, resolution=MetricSample.Resolution.MINUTE)
    ]


def window() -> tuple[datetime, datetime]:
    """The last hour (and the current minute), after flushing what is buffered to the database."""
    metrics.flush()
    now = datetime.now(UTC)
    return now - HOUR_AGO, now + timedelta(minutes=1)


# -- A URLconf for the 5xx case: the project's routes plus one view that fails ----------------------
def _broken_view(request, order_id: int):
    raise RuntimeError("the view failed")


def _ok_view(request, order_id: int):
    return HttpResponse("ok")


urlpatterns = [
    path("", include("huntaze.urls")),
    path("monitoring-test/", include(([path("orders/<int:order_id>/", _broken_view, name="broken")], "mt"))),
    path("monitoring-test/ok/<int:order_id>/", _ok_view),
]


# -- HTTP ------------------------------------------------------------------------------------------
def test_requests_are_recorded_under_their_route_pattern_not_the_raw_path(world):
    client = login_client(world.owner)
    for creator in (world.creator, world.other_creator):
        assert client.get(f"/settings/creators/{creator.pk}/").status_code == 200
    rows = [r for r in api_stats.route_table(*window()) if r.route == "/settings/creators/<int:creator_id>/"]
    assert [(r.method, r.requests, r.server_errors, r.client_errors) for r in rows] == [("GET", 2, 0, 0)]
    every_route = {dims["route"] for dims, _, _ in recorded("http.request")}
    assert not any(str(world.creator.pk) in route for route in every_route)


def test_ninja_operations_are_recorded_as_their_api_path(world):
    client = login_client(world.owner)
    assert client.get(f"/api/v1/creators/{world.creator.pk}").status_code == 200
    assert client.get(f"/api/v1/creators/{world.other_creator.pk}").status_code == 200
    assert client.get("/api/v1/creators/999999").status_code == 404  # answered by the operation
    rows = {(r.route, r.method): r for r in api_stats.route_table(*window())}
    api = rows[("/api/v1/creators/{creator_id}", "GET")]
    assert (api.requests, api.client_errors, api.server_errors) == (3, 1, 0)


def test_unmatched_paths_are_one_series_and_static_files_are_not_recorded(world):
    client = Client()
    assert client.get("/no/such/page/").status_code == 404
    assert client.get("/wp-login.php").status_code == 404
    client.get("/static/css/app.css")
    series = recorded("http.request")
    assert [(dims["route"], dims["status"], count) for dims, count, _ in series] == [("unmatched", "4xx", 2)]


def test_server_errors_count_in_the_error_rate(db, settings):
    settings.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)
    assert client.get("/monitoring-test/orders/1/").status_code == 500
    assert client.get("/monitoring-test/orders/2/").status_code == 500
    for order in range(3):
        assert client.get(f"/monitoring-test/ok/{order}/").status_code == 200
    rows = {r.route: r for r in api_stats.route_table(*window())}
    broken = rows["/monitoring-test/orders/<int:order_id>/"]  # the include()d prefix is part of it
    assert (broken.requests, broken.server_errors, broken.error_rate) == (2, 2, 1.0)
    healthy = rows["/monitoring-test/ok/<int:order_id>/"]
    assert (healthy.requests, healthy.server_errors, healthy.error_rate) == (3, 0, 0.0)
    assert healthy.p50_ms is not None and broken.p95_ms is not None


def test_route_labels_of_regex_and_ninja_patterns():
    assert route_label("admin/(?P<app_label>auth|accounts)/$") == "/admin/<app_label>/"
    assert route_label("api/v1/creators/<creator_id>", True) == "/api/v1/creators/{creator_id}"
    assert route_label("inbox/c/<int:conversation_id>/") == "/inbox/c/<int:conversation_id>/"


# -- websockets ------------------------------------------------------------------------------------
def _session_cookie(membership) -> bytes:
    client = login_client(membership)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.django_db(transaction=True)
async def test_a_websocket_session_records_open_duration_and_close_code():
    from huntaze.asgi import application

    world = await sync_to_async(build_world)("Sockets")
    cookie = await sync_to_async(_session_cookie)(world.owner)
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=[ORIGIN, (b"cookie", cookie)])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await communicator.disconnect(code=1001)  # the browser tab went away

    anonymous = WebsocketCommunicator(application, "/ws/campaigns/42/", headers=[ORIGIN])
    connected, code = await anonymous.connect(timeout=5)
    assert not connected and code == 4403

    rows = {row.route: row for row in await sync_to_async(lambda: api_stats.ws_table(*window()))()}
    notifications = rows["/ws/notifications/"]
    assert (notifications.opens, notifications.sessions, notifications.rejected) == (1, 1, 0)
    assert notifications.close_codes == [("1001", 1)]
    assert 0 <= notifications.mean_s < 5
    campaign = rows["/ws/campaigns/<int:campaign_id>/"]  # the pattern, not /ws/campaigns/42/
    assert (campaign.opens, campaign.sessions, campaign.rejected) == (0, 0, 1)
    assert await sync_to_async(recorded)("ws.rejected") == [
        ({"route": "/ws/campaigns/<int:campaign_id>/", "close_code": "4403"}, 1, 1.0)
    ]


@pytest.mark.django_db(transaction=True)
async def test_a_session_closed_by_the_server_records_the_servers_close_code():
    from channels.layers import get_channel_layer

    from apps.notifications.services import user_group
    from huntaze.asgi import application

    world = await sync_to_async(build_world)("Closing")
    cookie = await sync_to_async(_session_cookie)(world.manager)
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=[ORIGIN, (b"cookie", cookie)])
    assert (await communicator.connect(timeout=5))[0]
    await sync_to_async(world.manager.delete)()  # removed from the agency: the consumer closes with 4403
    event = {"type": "notification.message", "agency_id": world.agency.pk, "html": "<div>x</div>"}
    await get_channel_layer().group_send(user_group(world.manager.user_id), event)
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
    await communicator.wait()
    sessions = await sync_to_async(recorded)("ws.session")
    assert [(dims, count) for dims, count, _ in sessions] == [
        ({"route": "/ws/notifications/", "close_code": "4403"}, 1)
    ]


# -- Celery ----------------------------------------------------------------------------------------
@shared_task(name="tests.monitoring.failing_task", queue="bulk")
def failing_task() -> None:
    raise RuntimeError("the task failed")


@shared_task(name="tests.monitoring.retrying_task", bind=True, max_retries=1)
def retrying_task(self, attempt: int = 0) -> str:
    if attempt == 0:
        raise self.retry(kwargs={"attempt": 1}, countdown=0)
    return "done"


def test_task_runs_record_duration_outcome_and_queue(db, eager_celery):
    from apps.monitoring.tasks import rollup_metrics

    rollup_metrics.delay()
    with pytest.raises(RuntimeError):
        failing_task.delay()
    with pytest.raises(Retry):  # eagerly with propagation, the retry reaches the caller instead of running
        retrying_task.delay()
    rows = {(r.task, r.queue): r for r in api_stats.task_table(*window())}
    rollup = rows[("apps.monitoring.tasks.rollup_metrics", "bulk")]
    assert (rollup.runs, rollup.failures, rollup.retries) == (1, 0, 0)
    assert rollup.p50_ms is not None and rollup.p50_ms > 0
    failing = rows[("tests.monitoring.failing_task", "bulk")]
    assert (failing.runs, failing.failures, failing.retries, failing.failure_rate) == (1, 1, 0, 1.0)
    retrying = rows[("tests.monitoring.retrying_task", "default")]
    assert (retrying.runs, retrying.failures, retrying.retries) == (1, 0, 1)


@pytest.mark.worker
def test_a_real_worker_records_its_task_runs_by_queue_and_outcome(transactional_db):
    """A worker process (flushing its metrics every half second) runs a task sent to another
    queue than its own and a call that fails (arguments the task does not take)."""
    from huntaze.celery import app
    from tests.delivery.test_worker import wait_for
    from tests.processes import celery_worker_args, running

    def rows() -> dict:
        start, end = window()
        return {(r.task, r.queue): r for r in api_stats.task_table(start, end)}

    name = "apps.monitoring.tasks.rollup_metrics"
    with running(celery_worker_args(), env={"METRICS_FLUSH_SECONDS": "0.5"}):
        app.send_task(name, queue="interactive")
        app.send_task(name, kwargs={"unexpected": 1}, queue="bulk")
        wait_for(lambda: {(name, "interactive"), (name, "bulk")} <= set(rows()), what="the worker's task metrics")
    by_queue = rows()
    assert (by_queue[(name, "interactive")].runs, by_queue[(name, "interactive")].failures) == (1, 0)
    assert (by_queue[(name, "bulk")].runs, by_queue[(name, "bulk")].failures) == (1, 1)


def test_queue_depth_sample_counts_messages_waiting_on_each_queue(db):
    from apps.monitoring.task_metrics import sample_queue_depth_now
    from huntaze.celery import QUEUES, app

    with app.connection_for_write() as conn:
        for name in QUEUES:
            app.amqp.queues[name].bind(conn.default_channel).purge()
        for _ in range(3):
            app.send_task("tests.monitoring.nobody_runs_this", queue="bulk", connection=conn)
        try:
            depths = sample_queue_depth_now()
        finally:
            app.amqp.queues["bulk"].bind(conn.default_channel).purge()
    assert depths["bulk"] == 3 and depths["interactive"] == 0
    metrics.flush()
    latest = {q.queue: q for q in api_stats.queue_depths()}
    assert latest["bulk"].depth == 3 and latest["interactive"].depth == 0
    assert set(latest) == set(QUEUES)


# -- lower layers ----------------------------------------------------------------------------------
def test_a_gateway_call_with_the_built_in_provider_emits_ai_request(db, builtin):
    from apps.ai import gateway
    from apps.ai.types import AIError, AIRequest, Message

    gateway.generate_sync(AIRequest(feature="monitoring.test", messages=[Message("user", "Write a caption")]))
    with pytest.raises(AIError):
        gateway.generate_sync(AIRequest(feature="Bad Feature!", messages=[Message("user", "hi")]))
    series = {
        (d["provider"], d["outcome"], d["error_kind"], d["feature"]): (n, s) for d, n, s in recorded("ai.request")
    }
    ok = series[("builtin", "ok", "", "monitoring.test")]
    assert ok[0] == 1 and ok[1] >= 0
    assert [key for key in series if key[1] == "error"] == [("none", "error", "INVALID_REQUEST", "Bad Feature!")]


def test_delivery_attempts_are_counted_by_platform_and_outcome(world):
    from apps.delivery.services import delivery_send
    from tests.delivery.conftest import enqueue

    sent = enqueue(world, recipient_id="fan-plain")
    dead = enqueue(world, recipient_id="fail-permanent-fan")
    assert delivery_send(delivery_id=sent.pk) == "sent"
    assert delivery_send(delivery_id=dead.pk) == "dead"
    series = sorted((d["platform"], d["outcome"], n) for d, n, _ in recorded("delivery.attempt"))
    assert series == [("onlyfans", "dead", 1), ("onlyfans", "sent", 1)]


# -- the overview's tables on fixed data -----------------------------------------------------------
def _emit_requests(route: str, latencies: list[float], at: float, status: str = "2xx", method: str = "GET") -> None:
    for latency in latencies:
        metrics.emit(
            "http.request", latency, "Milliseconds", {"route": route, "method": method, "status": status}, at=at
        )


def test_route_table_percentiles_error_rates_and_order_on_fixed_data(db):
    at = datetime(2025, 3, 3, 12, 0, 30, tzinfo=UTC).timestamp()
    _emit_requests("/inbox/c/<int:conversation_id>/", [float(ms) for ms in range(1, 101)], at)
    _emit_requests("/api/v1/fans", [3.0] * 10, at)
    _emit_requests("/api/v1/fans", [700.0] * 2, at, status="5xx")
    _emit_requests("/api/v1/fans", [4.0] * 3, at, status="4xx")
    _emit_requests("/api/v1/fans", [4.0] * 5, at, method="POST")
    metrics.flush()
    start, end = datetime(2025, 3, 3, 11, tzinfo=UTC), datetime(2025, 3, 3, 13, tzinfo=UTC)
    rows = api_stats.route_table(start, end)
    assert [(r.route, r.method, r.requests) for r in rows] == [
        ("/inbox/c/<int:conversation_id>/", "GET", 100),
        ("/api/v1/fans", "GET", 15),
        ("/api/v1/fans", "POST", 5),
    ]
    inbox, fans_get, _ = rows
    # 1..100 ms: 20 requests up to 20 ms, 30 in (20, 50], 50 in (50, 100]; linear within a bucket.
    assert inbox.p50_ms == pytest.approx(50.0)
    assert inbox.p95_ms == pytest.approx(95.0)
    assert (fans_get.server_errors, fans_get.client_errors) == (2, 3)
    assert fans_get.error_rate == pytest.approx(2 / 15)
    # 13 of the 15 GETs took 3 or 4 ms, in (2, 5]: the median (rank 7.5) is 7.5/13 into it.
    assert fans_get.p50_ms == pytest.approx(2 + 3 * (7.5 / 13))
    assert fans_get.p95_ms == pytest.approx(500 + 500 * ((14.25 - 13) / 2))  # the two 700 ms errors
    assert api_stats.route_table(start, end, limit=1) == rows[:1]
    assert api_stats.route_table(end, end + HOUR_AGO) == []


def test_the_tables_take_the_same_queries_for_ten_routes_or_a_hundred(db):
    at = datetime.now(UTC).timestamp() - 60

    def queries_for(routes: int) -> int:
        for index in range(routes):
            _emit_requests(f"/route-{index}/", [5.0], at)
            metrics.emit(
                "celery.task",
                5.0,
                "Milliseconds",
                {"task": f"t{index}", "queue": "default", "outcome": "success"},
                at=at,
            )
        metrics.flush()
        with CaptureQueriesContext(connection) as captured:
            api_stats.api_overview()
        return len(captured)

    assert queries_for(10) == queries_for(100)


def test_the_partial_shows_empty_states_and_escapes_what_it_shows(db):
    html = render_to_string("monitoring/partials/api.html", api_stats.api_overview())
    assert "No requests recorded in this window yet" in html
    assert "No websocket connections in this window" in html
    assert "No background task has run in this window" in html
    assert "No queue depth sampled" in html

    at = datetime.now(UTC).timestamp() - 30
    _emit_requests("/inbox/c/<int:conversation_id>/", [12.0, 30000.0], at, status="5xx")
    metrics.emit("ws.open", 1, "Count", {"route": "/ws/inbox/"}, at=at)
    metrics.emit("ws.session", 42.0, "Seconds", {"route": "/ws/inbox/", "close_code": "1001"}, at=at)
    metrics.emit(
        "celery.task",
        80.0,
        "Milliseconds",
        {"task": "<script>x</script>", "queue": "bulk", "outcome": "failure"},
        at=at,
    )
    metrics.emit("celery.queue_depth", 17, "Count", {"queue": "bulk"}, at=at)
    metrics.flush()
    html = render_to_string("monitoring/partials/api.html", api_stats.api_overview())
    assert "/inbox/c/&lt;int:conversation_id&gt;/" in html and "<int:" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    assert "100.00%" in html  # both requests were 5xx
    assert "&gt; 10 s" in html  # p95 of 30 s is beyond the last bucket: no invented number
    assert "1001 \N{MULTIPLICATION SIGN} 1" in html and ">17<" in html


@pytest.mark.parametrize(
    ("code", "label"),
    [(1000, "1000"), (1006, "1006"), (4403, "4403"), (4408, "4408"), (4321, "app"), (3999, "app"),
     (7, "other"), (65000, "other"), ("nonsense", "other"), (None, "other")],
)  # fmt: skip
def test_clients_cannot_choose_close_code_series(code, label):
    assert close_code_label(code) == label
