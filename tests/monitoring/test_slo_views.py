"""The monitoring pages: staff only, SLO and webhook forms with field errors, the delivery log,
the htmx-refreshed tables, a failing metrics sink on the overview, constant query counts."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.core.metrics import emit, flush, recorder
from apps.monitoring import alerts, webhooks
from apps.monitoring.models import SLO, Alert, AlertWebhook, WebhookAttempt
from tests.accounts.factories import UserFactory
from tests.conftest import login_client

PAGES = [
    "/monitoring/",
    "/monitoring/alerts/",
    "/monitoring/slos/new/",
    "/monitoring/webhooks/",
]


@pytest.fixture
def staff(db) -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True), backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def slo(db) -> SLO:
    return SLO.objects.create(name="API availability", indicator="api_availability", objective=Decimal("99.9"))


class BrokenSink:
    """A sink whose outside service is down (as CloudWatch unreachable would be)."""

    name = "broken"

    def write(self, batch) -> None:
        raise ConnectionError("endpoint unreachable")


def test_members_who_are_not_staff_get_404_and_visitors_the_login_page(world, slo):
    webhook, _ = webhooks.webhook_create(url="https://93.184.215.14/x")
    urls = [*PAGES, f"/monitoring/slos/{slo.pk}/edit/", f"/monitoring/webhooks/{webhook.pk}/attempts/"]
    owner = login_client(world.owner)
    for url in urls:
        assert owner.get(url).status_code == 404, url
        assert Client().get(url).status_code == 302, url
    assert owner.post(f"/monitoring/slos/{slo.pk}/delete/").status_code == 404
    assert owner.post(f"/monitoring/webhooks/{webhook.pk}/delete/").status_code == 404
    assert SLO.objects.filter(pk=slo.pk).exists() and AlertWebhook.objects.filter(pk=webhook.pk).exists()
    assert b'href="/monitoring/"' not in owner.get("/").content  # no nav entry either


def test_staff_see_every_page_with_empty_states(staff):
    for url in PAGES:
        response = staff.get(url)
        assert response.status_code == 200, url
    page = staff.get("/monitoring/").content.decode()
    assert "No SLOs yet" in page and "No alert is firing" in page
    assert 'href="/monitoring/"' in page  # nav entry
    assert "No webhooks yet" in staff.get("/monitoring/webhooks/").content.decode()


def test_the_overview_shows_slos_open_alerts_and_refreshes_its_tables(staff, slo):
    for _ in range(99):
        emit("http.request", 12, "Milliseconds", {"route": "/x/", "method": "GET", "status": "2xx"})
    emit("http.request", 12, "Milliseconds", {"route": "/x/", "method": "GET", "status": "5xx"})
    flush()
    alerts.fire(f"slo:{slo.pk}:page-1h", kind="slo_burn", severity="page", title="API <b>burning</b>", slo_id=slo.pk)
    page = staff.get("/monitoring/").content.decode()
    assert "API availability" in page and "99.000%" in page  # one error in a hundred
    assert "API &lt;b&gt;burning&lt;/b&gt;" in page  # escaped
    assert 'hx-trigger="every 15s"' in page

    partial = staff.get("/monitoring/", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "Vary" in partial and "HX-Request" in partial["Vary"]
    body = partial.content.decode()
    assert "<html" not in body and "API availability" in body and "Metrics sinks" in body


def test_a_failing_sink_shows_on_the_overview(staff, settings):
    settings.METRICS_SINKS = ["apps.monitoring.sinks.DatabaseSink", f"{__name__}.BrokenSink"]
    recorder.reset_sinks()
    emit("http.request", 5, "Milliseconds", {"route": "/x/", "method": "GET", "status": "2xx"})
    flush()
    flush()  # the retry fails too: the batch is dropped and counted
    page = staff.get("/monitoring/").content.decode()
    assert "Failing" in page and "endpoint unreachable" in page


def test_overview_query_count_does_not_grow_with_slos_or_alerts(staff, slo):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff.get("/monitoring/").status_code == 200
        return len(queries)

    one = count()
    for i in range(6):
        other = SLO.objects.create(name=f"API {i}", indicator="api_availability", objective=Decimal("99"))
        alerts.fire(f"slo:{other.pk}:page-1h", kind="slo_burn", severity="page", title=f"burn {i}", slo_id=other.pk)
        alerts.resolve(f"slo:{other.pk}:page-1h")
        alerts.fire(f"slo:{other.pk}:page-1h", kind="slo_burn", severity="page", title=f"burn {i}", slo_id=other.pk)
    assert count() == one


def test_the_overview_shows_the_newest_fifty_firing_alerts_and_links_to_the_rest(staff, django_assert_max_num_queries):
    for i in range(60):
        alerts.fire(f"k{i}", kind="slo_burn", severity="ticket", title=f"Alert number {i}")
    with django_assert_max_num_queries(30):
        page = staff.get("/monitoring/").content.decode()
    assert page.count("Alert number") == 50
    assert "Alert number 59" in page and "The 50 newest of 60 firing alerts." in page
    assert 'href="/monitoring/alerts/?state=firing"' in page


def test_reloading_the_page_after_adding_a_webhook_adds_no_second_one(staff):
    response = staff.post("/monitoring/webhooks/", {"url": "https://93.184.215.14/hooks"})
    assert response.status_code == 302
    for _ in range(2):  # the page it leads to, reloaded
        assert staff.get(response["Location"]).status_code == 200
    assert AlertWebhook.objects.count() == 1


@pytest.mark.parametrize(
    "data, field",
    [
        ({"objective": "100"}, "objective"),
        ({"objective": "0"}, "objective"),
        ({"objective": "-5"}, "objective"),
        ({"objective": "lots"}, "objective"),
        ({"indicator": "happiness"}, "indicator"),
        ({"indicator": "ai_latency"}, "threshold_ms"),
        ({"indicator": "ai_latency", "threshold_ms": "4500"}, "threshold_ms"),
        ({"window_days": "7"}, "window_days"),
    ],
)
def test_slo_form_field_errors(staff, data, field):
    valid = {"name": "AI", "indicator": "api_availability", "objective": "99.9", "window_days": "30", "enabled": "on"}
    response = staff.post("/monitoring/slos/new/", {**valid, **data})
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not SLO.objects.exists()


def test_create_edit_and_delete_an_slo(staff):
    response = staff.post(
        "/monitoring/slos/new/",
        {"name": "AI latency", "indicator": "ai_latency", "objective": "95", "window_days": "28",
         "threshold_ms": "5000", "enabled": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    slo = SLO.objects.get()
    assert (slo.threshold_ms, slo.window_days, slo.objective) == (5000, 28, Decimal("95"))

    response = staff.post(
        f"/monitoring/slos/{slo.pk}/edit/",
        {"name": "AI success", "indicator": "ai_success", "objective": "99", "window_days": "30",
         "threshold_ms": "5000", "enabled": "on"},
    )  # fmt: skip
    assert response.status_code == 302
    slo.refresh_from_db()
    assert slo.indicator == "ai_success" and slo.threshold_ms is None  # only latency keeps one

    assert staff.get(f"/monitoring/slos/{slo.pk + 100}/edit/").status_code == 404
    assert staff.post(f"/monitoring/slos/{slo.pk}/delete/").status_code == 302
    assert not SLO.objects.exists()


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/hook", "http://", "http://169.254.169.254/"])
def test_webhook_form_refuses_malformed_or_forbidden_urls(staff, url):
    response = staff.post("/monitoring/webhooks/", {"url": url})
    assert response.status_code == 400
    assert "url" in response.context["form"].errors
    assert not AlertWebhook.objects.exists()


def test_a_new_webhook_shows_its_secret_once_and_never_logs_it(staff, caplog, settings):
    settings.MONITORING_WEBHOOK_ALLOW_PRIVATE = False
    assert "url" in staff.post("/monitoring/webhooks/", {"url": "http://127.0.0.1:9/x"}).context["form"].errors
    with caplog.at_level(logging.DEBUG):
        response = staff.post("/monitoring/webhooks/", {"url": "https://93.184.215.14/hooks", "description": "pager"})
        assert response.status_code == 302 and response["Location"] == "/monitoring/webhooks/"
        response = staff.get(response["Location"])
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    webhook = AlertWebhook.objects.get()
    assert webhook.secret.startswith("whsec_") and webhook.secret in response.content.decode()
    assert webhook.secret not in caplog.text
    listing = staff.get("/monitoring/webhooks/").content.decode()  # reloaded: the secret is gone
    assert "https://93.184.215.14/hooks" in listing and webhook.secret not in listing
    assert AlertWebhook.objects.count() == 1  # and the reload added nothing

    assert staff.post(f"/monitoring/webhooks/{webhook.pk}/delete/").status_code == 302
    assert not AlertWebhook.objects.exists()


def test_the_delivery_log_lists_each_attempt(staff, django_assert_max_num_queries):
    webhook, _ = webhooks.webhook_create(url="https://93.184.215.14/hooks")
    alert = alerts.fire("slo:9:page-1h", kind="slo_burn", severity="page", title="Burning")
    for number in range(1, 4):
        WebhookAttempt.objects.create(
            webhook=webhook, alert=alert, event="alert.fired", attempt=number, error="Timed out after 5 s"
        )
    with django_assert_max_num_queries(8):
        page = staff.get(f"/monitoring/webhooks/{webhook.pk}/attempts/").content.decode()
    assert page.count("Timed out after 5 s") == 3 and "Burning" in page


def test_the_alert_history_is_paged_and_filtered(staff):
    for i in range(30):
        alerts.fire(f"k{i}", kind="slo_burn", severity="ticket", title=f"Alert number {i}")
        if i % 2:
            alerts.resolve(f"k{i}")
    page = staff.get("/monitoring/alerts/").content.decode()
    assert "Page 1 of 2" in page
    firing = staff.get("/monitoring/alerts/?state=firing").content.decode()
    assert firing.count("still firing") == 15
    assert staff.get("/monitoring/alerts/?state=bogus&page=99").status_code == 200
    assert Alert.objects.count() == 30
