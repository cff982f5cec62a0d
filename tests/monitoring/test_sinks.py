"""The Prometheus and CloudWatch metrics sinks, as an operator meets them.

- Prometheus: real Huntaze processes (tests/monitoring/prometheus_child.py, started the way daphne
  or a Celery worker is, with METRICS_SINKS naming the sink) write into one multiprocess directory;
  /metrics merges them, and its text is read back with prometheus-client's own parser. Who may read
  /metrics is checked with the request's client address (RequestFactory), never real traffic.
- CloudWatch: real boto3 calls to moto's CloudWatch server on 127.0.0.1 (tests/fakes/cloudwatch.py),
  read back with list_metrics and get_metric_statistics; the API's limits and throttling are
  checked on the wire; an unreachable endpoint is a closed loopback port.
- The Grafana dashboard queries only metric names the sink really exposes.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.test import Client, RequestFactory
from prometheus_client.parser import text_string_to_metric_families

from apps.core import metrics
from apps.core.metrics import recorder, sink_status
from apps.monitoring.prometheus import metrics_view
from apps.monitoring.sink_cloudwatch import MAX_DATUMS_PER_CALL, MAX_PAYLOAD_BYTES, value_counts
from tests.processes import ROOT, database_url

PROMETHEUS = "apps.monitoring.sink_prometheus.PrometheusSink"
CLOUDWATCH = "apps.monitoring.sink_cloudwatch.CloudWatchSink"
DATABASE = "apps.monitoring.sinks.DatabaseSink"
TOKEN = "scrape-token-0123456789-abcdefghij"
ROUTE = {"route": "/api/v1/creators/{id}", "method": "GET", "status": "2xx"}

# One event of every agreed metric (the names the slices emit), as [name, value, unit, dimensions].
AGREED = [
    ["http.request", 42, "Milliseconds", ROUTE],
    ["http.request", 800, "Milliseconds", {**ROUTE, "status": "5xx"}],
    ["ws.session", 95.5, "Seconds", {"route": "/ws/notifications/", "close_code": "1000"}],
    ["ws.open", 1, "Count", {"route": "/ws/notifications/"}],
    ["celery.task", 120, "Milliseconds", {"task": "delivery.send", "queue": "bulk", "outcome": "success"}],
    ["celery.task", 30, "Milliseconds", {"task": "delivery.send", "queue": "bulk", "outcome": "failure"}],
    ["celery.queue_depth", 12, "Count", {"queue": "bulk"}],
    ["ai.request", 950, "Milliseconds", {"provider": "openai", "feature": "caption", "outcome": "ok",
                                         "error_kind": ""}],
    ["ai.request", 5, "Milliseconds", {"provider": "openai", "feature": "caption", "outcome": "error",
                                       "error_kind": "rate_limit"}],
    ["delivery.attempt", 1, "Count", {"platform": "onlyfans", "outcome": "sent"}],
    ["delivery.attempt", 1, "Count", {"platform": "onlyfans", "outcome": "failed"}],
]  # fmt: skip


# -- Prometheus ------------------------------------------------------------------------------------
class Child:
    """A Huntaze process on the Prometheus sink, driven line by line (see prometheus_child.py)."""

    def __init__(self, directory: Path, **env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.monitoring.prometheus_child"],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": database_url(),
                "METRICS_SINKS": PROMETHEUS,
                "PROMETHEUS_MULTIPROC_DIR": str(directory),
                "METRICS_FLUSH_SECONDS": "0",
                **env,
            },
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self.process.stdout.readline()
        assert ready.startswith("ready"), ready
        self.pid = int(ready.split()[1])

    def send(self, command: str) -> None:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def emit(self, events: list) -> None:
        self.send("emit " + json.dumps(events))
        self.send("flush")

    def exit(self) -> None:
        self.process.stdin.write("exit\n")
        self.process.stdin.flush()
        assert self.process.wait(timeout=30) == 0

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def sinks_children(tmp_path, settings):
    """Start Huntaze processes on one multiprocess directory; this process serves their /metrics."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    settings.METRICS_SINKS = [PROMETHEUS]
    settings.PROMETHEUS_MULTIPROC_DIR = directory
    started: list[Child] = []

    def start(**env: str) -> Child:
        child = Child(directory, **env)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()


def scrape(**meta: str) -> dict[str, dict[tuple, float]]:
    """GET /metrics from loopback, parsed: sample name -> {sorted labels: value}."""
    response = metrics_view(RequestFactory().get("/metrics", REMOTE_ADDR="127.0.0.1", **meta))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def labels(**found: str) -> tuple:
    return tuple(sorted(found.items()))


ROUTE_LABELS = labels(**ROUTE)


@pytest.mark.django_db
def test_prometheus_merges_two_processes_and_forgets_the_gauges_of_ended_ones(sinks_children):
    web, worker = sinks_children(), sinks_children()
    web.emit(
        [
            ["http.request", 5, "Milliseconds", ROUTE],  # on a bucket bound: counted in it
            ["http.request", 150, "Milliseconds", ROUTE],
            ["http.request", 7000, "Milliseconds", ROUTE],
            ["delivery.attempt", 1, "Count", {"platform": "onlyfans", "outcome": "sent"}],
            ["delivery.attempt", 1, "Count", {"platform": "onlyfans", "outcome": "sent"}],
            ["celery.queue_depth", 7, "Count", {"queue": "default"}],
            ["celery.queue_depth", 4, "Count", {"queue": "default"}],  # the latest sample counts
            ["ai.cost", 0.25, "USD", {"provider": "openai"}],
        ]
    )
    worker.emit(
        [
            ["http.request", 20, "Milliseconds", ROUTE],
            ["http.request", 20, "Milliseconds", ROUTE],
            ["delivery.attempt", 1, "Count", {"platform": "onlyfans", "outcome": "failed"}],
            ["celery.queue_depth", 9, "Count", {"queue": "default"}],
            ["ai.cost", 0.5, "USD", {"provider": "openai"}],
        ]
    )

    samples = scrape()
    buckets = samples["huntaze_http_request_seconds_bucket"]
    assert buckets[labels(**ROUTE, le="0.005")] == 1
    assert buckets[labels(**ROUTE, le="0.02")] == 3
    assert buckets[labels(**ROUTE, le="0.2")] == 4
    assert buckets[labels(**ROUTE, le="5.0")] == 4
    assert buckets[labels(**ROUTE, le="10.0")] == 5
    assert buckets[labels(**ROUTE, le="+Inf")] == 5
    assert samples["huntaze_http_request_seconds_count"][ROUTE_LABELS] == 5
    assert samples["huntaze_http_request_seconds_sum"][ROUTE_LABELS] == pytest.approx(7.195)
    attempts = samples["huntaze_delivery_attempt_total"]
    assert attempts[labels(platform="onlyfans", outcome="sent")] == 2
    assert attempts[labels(platform="onlyfans", outcome="failed")] == 1
    assert samples["huntaze_ai_cost_usd_total"][labels(provider="openai")] == pytest.approx(0.75)
    assert samples["huntaze_celery_queue_depth"] == {labels(queue="default"): 9}  # the highest live process

    worker.send("celery-shutdown")  # a pool process ends: its gauge no longer counts
    assert scrape()["huntaze_celery_queue_depth"] == {labels(queue="default"): 4}

    web.exit()  # a clean exit marks the process dead too; what it counted stays counted
    samples = scrape()
    assert "huntaze_celery_queue_depth" not in samples
    assert samples["huntaze_http_request_seconds_count"][ROUTE_LABELS] == 5
    assert samples["huntaze_delivery_attempt_total"][labels(platform="onlyfans", outcome="sent")] == 2


@pytest.mark.django_db
def test_prometheus_names_labels_and_caps_cardinality(sinks_children):
    child = sinks_children(METRICS_PROMETHEUS_MAX_SERIES="3")
    child.emit(
        [["http.request", 10, "Milliseconds", {**ROUTE, "route": f"/r/{i}"}] for i in range(5)]
        + [
            ["ratelimit.decision-made", 2, "Count", {"le": "agency", "layer.name": "global", "9x": "y"}],
            ["capacity.web-utilisation", 61.5, "Percent", {}],
            ["ai.request", math.nan, "Milliseconds", {}],  # never reaches the exposition
        ]
    )
    samples = scrape()
    counts = samples["huntaze_http_request_seconds_count"]
    routes = sorted(dict(key)["route"] for key in counts)
    assert routes == ["/r/0", "/r/1", "/r/2", "other"]
    assert counts[labels(route="other", method="other", status="other")] == 2
    decided = samples["huntaze_ratelimit_decision_made_total"]
    assert decided == {labels(le_="agency", layer_name="global", d_9x="y"): 2}
    assert samples["huntaze_capacity_web_utilisation_percent"] == {(): 61.5}
    assert "huntaze_ai_request_seconds_count" not in samples


# -- /metrics protection ---------------------------------------------------------------------------
@pytest.fixture
def sinks_endpoint(tmp_path, settings):
    settings.METRICS_SINKS = [DATABASE, PROMETHEUS]
    settings.PROMETHEUS_MULTIPROC_DIR = tmp_path
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    return settings


def get_metrics(address: str, **headers: str) -> int:
    return metrics_view(RequestFactory().get("/metrics", REMOTE_ADDR=address, headers=headers)).status_code


def test_metrics_is_open_to_loopback_and_to_the_token_only(sinks_endpoint):
    assert get_metrics("127.0.0.1") == 200
    assert get_metrics("::1") == 200
    assert get_metrics("203.0.113.9") == 403
    assert get_metrics("203.0.113.9", Authorization="Bearer wrong-token-0123456789-abcdefgh") == 403
    assert get_metrics("203.0.113.9", Authorization=f"Basic {TOKEN}") == 403
    assert get_metrics("203.0.113.9", Authorization=f"Bearer {TOKEN}") == 200
    assert get_metrics("203.0.113.9", Authorization=f"bearer {TOKEN}") == 200
    # Through a reverse proxy on the same host every visitor looks like loopback: token only.
    assert get_metrics("127.0.0.1", X_Forwarded_For="198.51.100.7") == 403
    assert get_metrics("127.0.0.1", X_Forwarded_For="198.51.100.7", Authorization=f"Bearer {TOKEN}") == 200


def test_metrics_without_a_token_setting_refuses_every_token(sinks_endpoint):
    sinks_endpoint.METRICS_TOKEN = ""
    assert get_metrics("203.0.113.9", Authorization="Bearer ") == 403
    assert get_metrics("203.0.113.9", Authorization="Bearer") == 403


def test_metrics_allowed_networks_are_configurable(sinks_endpoint):
    sinks_endpoint.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert get_metrics("10.20.30.40") == 200
    assert get_metrics("::ffff:10.20.30.40") == 200  # IPv4 seen through a dual-stack socket
    assert get_metrics("127.0.0.1") == 403
    assert get_metrics("not-an-address") == 403


def test_metrics_url_answers_404_when_the_sink_is_not_configured(sinks_endpoint, db):
    assert Client().get("/metrics").status_code == 200  # the URL is routed, middleware included
    assert Client().post("/metrics").status_code in (403, 405)
    sinks_endpoint.METRICS_SINKS = [DATABASE]
    assert Client().get("/metrics").status_code == 404


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("METRICS_ALLOWED_NETWORKS", "10.0.0.1/8", "METRICS_ALLOWED_NETWORKS: '10.0.0.1/8' is not a network"),
        ("METRICS_TOKEN", "short", "METRICS_TOKEN must be at least 24 characters"),
        ("METRICS_CLOUDWATCH_NAMESPACES", '{"ai": "AWS/AI"}', "'AWS/AI' is not a CloudWatch namespace"),
        ("METRICS_CLOUDWATCH_NAMESPACES", '["Huntaze"]', "must be a JSON object"),
        ("AWS_REGION", "mars", "AWS_REGION 'mars' is not an AWS region"),
        ("METRICS_CLOUDWATCH_ENDPOINT_URL", "localhost:4566", "must be an http:// or https:// URL"),
        ("METRICS_PROMETHEUS_MAX_SERIES", "0", "METRICS_PROMETHEUS_MAX_SERIES must be at least 1"),
    ],
)
def test_nonsense_sink_settings_stop_the_process_with_a_clear_message(variable, value, message):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "huntaze.settings", variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr, result.stderr[-2000:]


def test_production_lets_no_address_read_metrics_without_the_token():
    # Behind a proxy on the same host every visitor would come from 127.0.0.1: outside development
    # the loopback default is off, so /metrics needs the token or a network named on purpose.
    script = "import django; django.setup(); from django.conf import settings; print(settings.METRICS_ALLOWED_NETWORKS)"
    from tests.test_settings import PROD_ENV

    outputs = []
    for debug in (PROD_ENV, {"DEBUG": "true"}):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "huntaze.settings", **debug}
        env.pop("METRICS_ALLOWED_NETWORKS", None)
        result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=60)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(result.stdout.strip().splitlines()[-1])
    assert outputs == ["[]", "['127.0.0.0/8', '::1/128']"]


# -- CloudWatch ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sinks_fake_cloudwatch():
    from tests.fakes.cloudwatch import FakeCloudWatch

    server = FakeCloudWatch().start()
    yield server
    server.stop()


@pytest.fixture
def sinks_cloudwatch(sinks_fake_cloudwatch, settings, monkeypatch):
    """This process's metrics going to the fake CloudWatch, under an Environment of the test's own."""
    for name, value in sinks_fake_cloudwatch.environment().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings.METRICS_SINKS = [CLOUDWATCH]
    settings.METRICS_CLOUDWATCH_ENDPOINT_URL = sinks_fake_cloudwatch.endpoint
    settings.AWS_REGION = "us-east-1"
    settings.METRICS_ENVIRONMENT = f"test-{uuid.uuid4().hex[:8]}"
    recorder.reset_sinks()
    sinks_fake_cloudwatch.calls.clear()
    sinks_fake_cloudwatch.throttle_next(0)
    yield sinks_fake_cloudwatch
    recorder.reset_sinks()


MINUTE = (int(time.time()) // 60 - 5) * 60  # a whole minute a little in the past


def statistics(cloudwatch, namespace: str, name: str, dimensions: dict[str, str], environment: str) -> dict:
    answer = cloudwatch.client().get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": "Environment", "Value": environment}]
        + [{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=datetime.fromtimestamp(MINUTE - 60, UTC),
        EndTime=datetime.fromtimestamp(MINUTE + 120, UTC),
        Period=60,
        Statistics=["SampleCount", "Sum", "Minimum", "Maximum"],
    )
    (point,) = answer["Datapoints"]
    return point


def listed_metrics(client, namespace: str, environment: str) -> set[tuple[str, tuple]]:
    """list_metrics, every page, as a set of (name, sorted dimensions). moto lists a metric once
    per value stored (CloudWatch lists it once), hence the set."""
    pages = client.get_paginator("list_metrics").paginate(
        Namespace=namespace, Dimensions=[{"Name": "Environment", "Value": environment}]
    )
    return {
        (metric["MetricName"], labels(**{d["Name"]: d["Value"] for d in metric["Dimensions"]}))
        for page in pages
        for metric in page["Metrics"]
    }


def cloudwatch_status():
    return next(status for status in sink_status() if status.name == "cloudwatch")


@pytest.mark.django_db
def test_cloudwatch_receives_every_metric_under_its_namespace_with_the_environment(sinks_cloudwatch, settings):
    environment = settings.METRICS_ENVIRONMENT
    for value in (12, 30, 480):
        metrics.emit("http.request", value, "Milliseconds", ROUTE, at=MINUTE + 5)
    for outcome in ("sent", "sent", "dead"):
        metrics.emit("delivery.attempt", 1, "Count", {"platform": "fansly", "outcome": outcome}, at=MINUTE + 7)
    metrics.emit("celery.queue_depth", 40, "Count", {"queue": "bulk"}, at=MINUTE + 1)
    metrics.emit("celery.queue_depth", 10, "Count", {"queue": "bulk"}, at=MINUTE + 31)
    metrics.emit("ai.cost", 0.125, "USD", {"provider": "anthropic"}, at=MINUTE + 2)
    metrics.emit("billing.invoice", 1, "Count", {}, at=MINUTE + 3)
    assert metrics.flush() == 10

    client = sinks_cloudwatch.client()
    assert listed_metrics(client, "Huntaze/API", environment) == {
        ("http.request", labels(Environment=environment, **ROUTE)),
    }

    latency = statistics(sinks_cloudwatch, "Huntaze/API", "http.request", ROUTE, environment)
    assert (latency["SampleCount"], latency["Sum"], latency["Minimum"], latency["Maximum"]) == (3, 522, 12, 480)
    assert latency["Unit"] == "Milliseconds"
    sent = statistics(sinks_cloudwatch, "Huntaze/Delivery", "delivery.attempt", {"outcome": "sent"}, environment)
    assert (sent["Sum"], sent["Unit"]) == (2, "Count")
    depth = statistics(sinks_cloudwatch, "Huntaze/Tasks", "celery.queue_depth", {"queue": "bulk"}, environment)
    assert (depth["Maximum"], depth["Minimum"], depth["SampleCount"]) == (40, 10, 2)
    cost = statistics(sinks_cloudwatch, "Huntaze/AI", "ai.cost", {"provider": "anthropic"}, environment)
    assert (cost["Sum"], cost["Unit"]) == (0.125, "None")
    other = statistics(sinks_cloudwatch, "Huntaze", "billing.invoice", {}, environment)
    assert other["Sum"] == 1

    status = cloudwatch_status()
    assert (status.written, status.failures, status.dropped, status.healthy) == (10, 0, 0, True)


@pytest.mark.django_db
def test_cloudwatch_batches_within_the_datum_and_payload_limits(sinks_cloudwatch, settings):
    for index in range(2500):
        metrics.emit("delivery.attempt", 1, "Count", {"platform": f"p{index}", "outcome": "sent"}, at=MINUTE)
    wide = {f"d{k}": f"{k}" * 1000 for k in range(10)}  # about 10 kB a datum: 100 of them pass 1 MB
    for index in range(100):
        metrics.emit("http.request", 10, "Milliseconds", {**wide, "route": f"/r/{index}"}, at=MINUTE)
    metrics.flush()

    delivery = [call for call in sinks_cloudwatch.calls if call.namespace == "Huntaze/Delivery"]
    assert [call.datums for call in delivery] == [1000, 1000, 500]
    api = [call for call in sinks_cloudwatch.calls if call.namespace == "Huntaze/API"]
    assert len(api) >= 2 and sum(call.datums for call in api) == 100
    assert all(call.decoded_bytes < MAX_PAYLOAD_BYTES and call.datums <= MAX_DATUMS_PER_CALL for call in api + delivery)

    listed = listed_metrics(sinks_cloudwatch.client(), "Huntaze/Delivery", settings.METRICS_ENVIRONMENT)
    assert len(listed) == 2500
    assert cloudwatch_status().failures == 0


@pytest.mark.django_db
def test_cloudwatch_throttling_is_retried_and_a_failed_batch_resumes_without_duplicates(sinks_cloudwatch, settings):
    settings.METRICS_CLOUDWATCH_MAX_ATTEMPTS = 3
    recorder.reset_sinks()
    sinks_cloudwatch.throttle_next(2)  # two throttled answers, then the third attempt passes
    metrics.emit("ai.request", 300, "Milliseconds", {"provider": "openai", "outcome": "ok"}, at=MINUTE)
    metrics.flush()
    assert [call.throttled for call in sinks_cloudwatch.calls] == [True, True, False]
    assert cloudwatch_status().failures == 0

    sinks_cloudwatch.calls.clear()
    for index in range(2500):
        metrics.emit("delivery.attempt", 1, "Count", {"platform": f"p{index}", "outcome": "sent"}, at=MINUTE)
    sinks_cloudwatch.throttle_next(3, after=1)  # the second call is throttled on every attempt
    metrics.flush()
    assert cloudwatch_status().failures == 1
    metrics.flush()  # the kept batch goes again, from the call that failed
    accepted = [call.datums for call in sinks_cloudwatch.calls if not call.throttled]
    assert accepted == [1000, 1000, 500]
    status = cloudwatch_status()
    assert (status.failures, status.dropped, status.healthy) == (1, 0, True)
    assert "Throttling" in status.last_error


@pytest.mark.django_db
def test_an_unreachable_cloudwatch_is_counted_kept_then_dropped_without_slowing_emit(sinks_cloudwatch, settings):
    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings.METRICS_CLOUDWATCH_ENDPOINT_URL = f"http://127.0.0.1:{closed_port}"
    recorder.reset_sinks()

    started = time.perf_counter()
    for value in range(50):
        metrics.emit("http.request", value, "Milliseconds", ROUTE)
    assert time.perf_counter() - started < 0.05  # emit() never waits for a sink

    started = time.perf_counter()
    assert metrics.flush() == 50  # no exception reaches the caller
    first = cloudwatch_status()
    assert (first.failures, first.dropped, first.healthy) == (1, 0, False)
    assert "connect" in first.last_error.lower()

    metrics.flush()  # the kept batch fails again: now it is dropped, and counted
    second = cloudwatch_status()
    assert (second.failures, second.dropped, second.written) == (2, 50, 0)
    assert time.perf_counter() - started < 15  # retries are bounded: a dead endpoint cannot hang flushes


# -- value compression for CloudWatch's Values/Counts ---------------------------------------------
def test_many_distinct_durations_keep_count_sum_extremes_and_percentiles():
    rng = random.Random(7)
    values = [rng.lognormvariate(4, 1) for _ in range(20_000)]
    sent, counts = value_counts(values)
    assert len(sent) <= 150
    assert sum(counts) == len(values)
    assert sum(v * c for v, c in zip(sent, counts, strict=True)) == pytest.approx(sum(values), rel=1e-9)
    assert (min(sent), max(sent)) == (min(values), max(values))
    expanded = sorted(v for v, c in zip(sent, counts, strict=True) for _ in range(int(c)))
    exact = sorted(values)
    for q in (0.5, 0.95, 0.99):
        index = int(q * len(values))
        assert expanded[index] == pytest.approx(exact[index], rel=0.08)
    few = [1.0, 2.0, 2.0, 3.5]
    assert value_counts(few) == ([1.0, 2.0, 3.5], [1.0, 2.0, 1.0])


# -- the Grafana dashboard ------------------------------------------------------------------------
def panels(items: list[dict]) -> list[dict]:
    found = []
    for item in items:
        found.append(item)
        found.extend(panels(item.get("panels", [])))
    return found


@pytest.mark.django_db
def test_grafana_dashboard_queries_only_metrics_the_sink_exposes(sinks_children):
    dashboard = json.loads((ROOT / "docs" / "grafana" / "huntaze.json").read_text())
    child = sinks_children()
    child.emit(AGREED)
    exposed = set(scrape())

    queried = 0
    for panel in panels(dashboard["panels"]):
        if panel.get("type") == "row":
            continue
        expressions = [target["expr"] for target in panel.get("targets", [])]
        assert expressions, f"panel {panel.get('title')!r} has no query"
        for expr in expressions:
            names = set(re.findall(r"\bhuntaze_[a-z0-9_]+", expr))
            assert names, f"{expr!r} queries no Huntaze metric"
            assert names <= exposed, f"panel {panel['title']!r} queries {names - exposed}, not exposed"
            queried += 1
    assert queried >= 8
    titles = " ".join(panel.get("title", "").lower() for panel in panels(dashboard["panels"]))
    for topic in ("request rate", "p95", "error", "ai", "delivery", "queue depth", "task fail"):
        assert topic in titles, topic
