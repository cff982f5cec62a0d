"""Service-metric anomalies: the detector over the platform's recorded request metrics (written
through the metrics facade's database sink and rolled up into hours as beat does) and over each
agency's AI cost per hour; an unusual hour is stored with its expected range and severity,
raises a monitoring alert that reaches staff (platform) or the agency's owners and managers (AI
cost) in the app, and resolves once the series is quiet again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.urls import reverse

from apps.ai.models import AIRequestLog
from apps.core.metrics import BUCKETS, Batch, Point, bucket_index, emit, flush
from apps.monitoring.models import Alert
from apps.monitoring.rollups import rollup
from apps.monitoring.sinks import DatabaseSink
from apps.notifications.models import Notification
from apps.optimization.models import ServiceAnomaly
from apps.optimization.service_anomalies import run_service_anomalies
from apps.optimization.tasks import hourly_anomalies

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 14, 20, tzinfo=UTC)
END = NOW.replace(minute=0)  # the current hour, not over yet
API = {"route": "/api/v1/creators/{creator_id}", "method": "GET"}


def _point(minute: int, count: int, status: str, value_ms: float) -> Point:
    buckets = [0] * BUCKETS
    buckets[bucket_index(value_ms)] = count
    return Point(
        name="http.request", unit="Milliseconds", dimensions=tuple(sorted({**API, "status": status}.items())),
        minute=minute, count=count, sum=value_ms * count, min=value_ms, max=value_ms, buckets=buckets,
    )  # fmt: skip


def _history(days: int = 28) -> None:
    """Four weeks of hourly traffic (busier in the evening), a few 5xx an hour, as minute points."""
    rng = np.random.default_rng(11)
    points = []
    for back in range(days * 24, 1, -1):
        hour = END - timedelta(hours=back)
        total = int(600 + 400 * (18 <= hour.hour <= 23) + rng.integers(0, 60))
        errors = int(rng.integers(1, 5))
        minute = int(hour.timestamp())
        points += [_point(minute, total - errors, "2xx", 20.0), _point(minute, errors, "5xx", 20.0)]
    batch = Batch(events=[])
    batch.points = points
    DatabaseSink().write(batch)


def _incident_hour() -> None:
    """The last closed hour, live through the facade: the usual traffic (600 requests, as at 13:00
    every day), a third of it failing."""
    start = (END - timedelta(hours=1)).timestamp()
    for second in range(0, 3600, 6):
        status = "5xx" if second % 18 == 0 else "2xx"
        emit("http.request", 20.0, "Milliseconds", {**API, "status": status}, at=start + second)
    flush()


def test_a_burst_of_server_errors_alerts_staff_and_resolves_when_quiet(
    world, eager_celery, django_capture_on_commit_callbacks
):
    world.owner.user.is_staff = True
    world.owner.user.save(update_fields=["is_staff"])
    _history()
    _incident_hour()
    rollup(now=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        report = run_service_anomalies(now=NOW)
    assert report.series == 3 and report.alerts_fired == 1
    anomaly = ServiceAnomaly.objects.get(metric="http_error_rate")
    assert anomaly.agency_id is None and anomaly.at == END - timedelta(hours=1)
    assert anomaly.value == pytest.approx(1 / 3, abs=0.01) and anomaly.value > anomaly.expected_high
    assert anomaly.severity in ("medium", "high") and anomaly.alert_key == "optimization.service:http_error_rate"
    alert = Alert.objects.get(key=anomaly.alert_key)
    assert alert.state == "firing" and alert.agency_id is None and "33.33%" in alert.title
    note = Notification.objects.get(user_id=world.owner.user_id)  # staff: in the app
    assert "server error rate" in note.title
    assert not Notification.objects.filter(user_id=world.manager.user_id).exists()  # not staff: a platform matter

    # The same run again stores and fires nothing twice.
    again = run_service_anomalies(now=NOW)
    assert (again.anomalies_stored, again.alerts_fired) == (0, 0)

    # Three ordinary hours later the series is quiet: the alert resolves.
    later = NOW + timedelta(hours=4)
    points = []
    for back in range(4, 0, -1):
        minute = int((later.replace(minute=0) - timedelta(hours=back)).timestamp())
        if minute > int((END - timedelta(hours=1)).timestamp()):
            points += [_point(minute, 700, "2xx", 20.0), _point(minute, 2, "5xx", 20.0)]
    batch = Batch(events=[])
    batch.points = points
    DatabaseSink().write(batch)
    rollup(now=later)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_service_anomalies(now=later).alerts_resolved == 1
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_an_hour_the_rollup_has_not_reached_is_unknown_not_a_drop_to_zero(world, eager_celery):
    _history()  # ordinary traffic up to two hours ago
    rollup(now=END - timedelta(minutes=50))  # the rollup has not closed the last hour yet
    report = run_service_anomalies(now=NOW)
    assert report.series == 3
    assert not ServiceAnomaly.objects.filter(metric="http_requests").exists()
    assert not Alert.objects.exists()


def test_an_agencys_ai_spend_spike_reaches_its_owners_and_managers(
    world, other_world, client_for, eager_celery, django_capture_on_commit_callbacks
):
    rng = np.random.default_rng(5)
    rows = []
    for back in range(28 * 24, 0, -1):
        hour = END - timedelta(hours=back)
        cost = Decimal("40.00") if back == 1 else Decimal(f"{0.5 + 0.3 * (hour.hour >= 18) + rng.random() * 0.1:.4f}")
        rows.append(
            AIRequestLog(agency=world.agency, feature="drafts", cost_usd=cost, created_at=hour + timedelta(minutes=7))
        )
        rows.append(AIRequestLog(agency=other_world.agency, feature="drafts", cost_usd=Decimal("0.40"),
                                 created_at=hour + timedelta(minutes=9)))  # fmt: skip
    AIRequestLog.objects.bulk_create(rows)
    with django_capture_on_commit_callbacks(execute=True):
        report = run_service_anomalies(now=NOW)
    assert report.series == 2  # one per agency with AI spend; no request metrics recorded
    anomaly = ServiceAnomaly.objects.get()
    assert (anomaly.agency_id, anomaly.metric, anomaly.value) == (world.agency.pk, "ai_cost", 40.0)
    assert anomaly.severity == "high" and anomaly.expected_high < 1.5 and anomaly.direction == "above"
    alert = Alert.objects.get(key=f"optimization.service:{world.agency.pk}:ai_cost")
    assert alert.agency_id == world.agency.pk and alert.severity == "ticket" and "$40.00" in alert.title
    told = set(Notification.objects.values_list("user_id", flat=True))
    assert told == {world.owner.user_id, world.manager.user_id}
    assert not Notification.objects.filter(agency=other_world.agency).exists()

    # The anomalies page lists it for a manager, not for a chatter or another agency.
    page = client_for(world.manager).get(reverse("optimization:anomalies")).content.decode()
    assert "AI cost per hour (USD)" in page and "40.000" in page
    assert (
        "AI cost per hour (USD)"
        not in client_for(world.chatter).get(reverse("optimization:anomalies")).content.decode()
    )
    other = client_for(other_world.owner).get(reverse("optimization:anomalies")).content.decode()
    assert "AI cost per hour (USD)" not in other


def test_too_little_history_is_no_anomaly_and_the_hourly_task_runs_it(world, eager_celery):
    _history(days=3)
    rollup(now=NOW)
    assert run_service_anomalies(now=NOW).anomalies_stored == 0
    result = hourly_anomalies.delay().get()
    assert result["service_anomalies_stored"] == 0 and result["agencies"] == 0  # no hourly rows anywhere


def test_the_api_lists_the_agencys_service_anomalies_to_owners_and_managers(world, other_world):
    from tests.messaging.api_helpers import token_client

    at = END - timedelta(hours=1)
    fields = {"at": at, "value": 40.0, "expected_low": 0.4, "expected_high": 1.0, "score": 0.95, "severity": "high"}
    ServiceAnomaly.objects.create(agency=world.agency, metric="ai_cost", alert_key="k", **fields)
    ServiceAnomaly.objects.create(agency=other_world.agency, metric="ai_cost", **fields)
    ServiceAnomaly.objects.create(agency=None, metric="http_error_rate", **fields)
    response = token_client(world.manager, "read").get("/api/v1/optimization/service-anomalies?days=366")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [(item["scope"], item["metric"], item["alerted"], item["direction"]) for item in items] == [
        ("agency", "ai_cost", True, "above")
    ]
    assert token_client(world.chatter, "read").get("/api/v1/optimization/service-anomalies").status_code == 403
    assert token_client(world.owner, "read").get("/api/v1/optimization/service-anomalies?days=0").status_code in (
        400,
        422,
    )
    world.owner.user.is_staff = True
    world.owner.user.save(update_fields=["is_staff"])
    staff = token_client(world.owner, "read").get("/api/v1/optimization/service-anomalies?days=366").json()["items"]
    assert {item["scope"] for item in staff} == {"agency", "platform"}


@pytest.mark.parametrize(
    ("role", "staff", "sees"),
    [
        ("manager", False, {"agency"}),
        ("manager", True, {"agency", "platform"}),
        ("chatter", True, {"platform"}),  # staff hear of platform alerts, not of an agency's AI bill
        ("chatter", False, None),
        ("viewer", False, None),
    ],
)
def test_the_page_and_the_api_show_a_member_the_same_service_anomalies(world, client_for, role, staff, sees):
    from tests.messaging.api_helpers import token_client

    fields = {"value": 40.0, "expected_low": 0.4, "expected_high": 1.0, "score": 0.95, "severity": "high"}
    ServiceAnomaly.objects.create(agency=world.agency, metric="ai_cost", at=END - timedelta(hours=1), **fields)
    ServiceAnomaly.objects.create(agency=None, metric="http_error_rate", at=END - timedelta(hours=2), **fields)
    membership = getattr(world, role)
    membership.user.is_staff = staff
    membership.user.save(update_fields=["is_staff"])
    labels = {"agency": "AI cost per hour (USD)", "platform": "Server error rate (5xx share)"}

    page = client_for(membership).get(reverse("optimization:anomalies")).content.decode()
    on_page = {scope for scope, label in labels.items() if label in page}
    response = token_client(membership, "read").get("/api/v1/optimization/service-anomalies?days=366")
    if sees is None:
        assert on_page == set() and response.status_code == 403
    else:
        assert response.status_code == 200
        assert on_page == sees == {item["scope"] for item in response.json()["items"]}
