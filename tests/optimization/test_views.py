"""Optimization pages: roles, tenancy, HTMX decisions, bad input, escaping, constant query counts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.optimization import services
from apps.optimization.models import Anomaly, OptimizationSettings, Recommendation
from tests.accounts.factories import CreatorFactory, MembershipFactory
from tests.conftest import World
from tests.optimization.factories import add_daily, add_hourly, add_offers, add_posts

ROLES = ("owner", "manager", "chatter", "viewer")
HX = {"HTTP_HX_REQUEST": "true"}


def _fill(world: World) -> None:
    """Enough data for every engine, an obvious tips spike three days ago, then the nightly run."""
    for index, creator in enumerate((world.creator, world.other_creator)):
        add_daily(creator, days=120, spike_days_ago=3, seed=index + 1)
        add_offers(creator, seed=index + 3)
        add_posts(creator, days=30)
        add_hourly(creator, days=30)
    services.run_nightly(agency_id=world.agency.pk)


@pytest.fixture
def filled(world: World) -> World:
    _fill(world)
    assert Recommendation.objects.filter(creator=world.creator, status="open").exists()
    assert Anomaly.objects.filter(creator=world.creator).exists()
    return world


def _open(world: World, kind: str | None = None) -> Recommendation:
    recommendations = Recommendation.objects.filter(creator=world.creator, status="open")
    if kind:
        recommendations = recommendations.filter(kind=kind)
    return recommendations.first()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", ["overview", "recommendations", "anomalies"])
def test_pages_open_for_every_role(filled, client_for, role, name):
    response = client_for(filled.member(role)).get(reverse(f"optimization:{name}"))
    assert response.status_code == 200
    assert filled.creator.display_name in response.content.decode()


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("manager", 200), ("chatter", 403), ("viewer", 403)])
@pytest.mark.parametrize("name", ["settings", "import"])
def test_settings_and_import_are_for_owners_and_managers(world, client_for, role, status, name):
    assert client_for(world.member(role)).get(reverse(f"optimization:{name}")).status_code == status


def test_overview_shows_pricing_timing_anomalies_and_recommendations(filled, client_for):
    response = client_for(filled.owner).get(reverse("optimization:overview"), {"creator": filled.creator.pk})
    html = response.content.decode()
    assert "PPV price" in html and "PPV to $" in html  # the engine's sentence
    assert "Best times to post" in html and "Best times to message" in html
    assert html.count("<svg") >= 4  # demand curve, two heat maps, the anomaly series
    assert "Unusual days" in html and "Acknowledge" in html
    assert reverse("optimization:recommendation-accept", args=[_open(filled).pk]) in html
    assert "Track record" in html


def test_chatter_sees_only_assigned_creators(filled, client_for):
    client = client_for(filled.chatter)
    assert client.get(reverse("optimization:overview"), {"creator": filled.other_creator.pk}).status_code == 404
    html = client.get(reverse("optimization:recommendations")).content.decode()
    assert filled.other_creator.display_name not in html


def test_not_enough_data_is_a_sentence_not_a_number(world, client_for):
    html = client_for(world.owner).get(reverse("optimization:overview")).content.decode()
    assert "Not enough data yet: need" in html
    assert "Import past offers as CSV" in html
    assert "No daily results yet" in html


def test_member_without_creators_gets_an_empty_state(db, client_for):
    from tests.accounts.factories import AgencyFactory

    membership = MembershipFactory(agency=AgencyFactory(), role="owner")
    html = client_for(membership).get(reverse("optimization:overview")).content.decode()
    assert "No creator to optimize yet" in html


@pytest.mark.parametrize("query", [{"creator": "abc"}, {"creator": "99999999"}])
def test_bad_or_unknown_creator_is_404(world, client_for, query):
    assert client_for(world.owner).get(reverse("optimization:overview"), query).status_code == 404


def test_another_tenants_creator_is_404(world, other_world, client_for):
    response = client_for(world.owner).get(reverse("optimization:overview"), {"creator": other_world.creator.pk})
    assert response.status_code == 404


def test_bad_strategy_is_a_form_error_not_a_500(world, client_for):
    response = client_for(world.owner).get(reverse("optimization:overview"), {"strategy": "<b>x</b>", "risk": "x"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Select a valid choice" in html
    assert "<b>x</b>" not in html


def test_strategy_change_rerenders_the_advice_part(filled, client_for):
    response = client_for(filled.owner).get(
        reverse("optimization:overview"),
        {"creator": filled.creator.pk, "strategy": "conversion_max", "risk": "conservative", "part": "advice"},
        **HX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="advice"')
    assert "<html" not in html
    assert 'value="conversion_max" selected' in html


def test_accept_via_htmx_swaps_the_card(filled, client_for):
    recommendation = _open(filled, "price")
    url = reverse("optimization:recommendation-accept", args=[recommendation.pk])
    response = client_for(filled.manager).post(url, **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="rec-{recommendation.pk}"' in html and "Accepted" in html and "<html" not in html
    recommendation.refresh_from_db()
    assert recommendation.status == "accepted" and recommendation.decided_by_id == filled.manager.user_id
    again = client_for(filled.manager).post(url, **HX)  # a second click: said plainly, not a 500
    assert again.status_code == 200 and "already" in again.content.decode()


def test_dismiss_with_reason_escapes_it(filled, client_for):
    recommendation = _open(filled)
    url = reverse("optimization:recommendation-dismiss", args=[recommendation.pk])
    response = client_for(filled.owner).post(url, {"reason": "<img src=x onerror=alert(1)>"}, **HX)
    html = response.content.decode()
    assert "Dismissed" in html
    assert "<img src=x" not in html and "&lt;img src=x" in html
    recommendation.refresh_from_db()
    assert recommendation.status == "dismissed"


def test_accept_without_javascript_redirects_back(filled, client_for):
    recommendation = _open(filled)
    url = reverse("optimization:recommendation-accept", args=[recommendation.pk])
    response = client_for(filled.owner).post(url, {"next": "/optimization/?creator=1"})
    assert response.status_code == 302 and response["Location"] == "/optimization/?creator=1"
    evil = client_for(filled.owner).post(
        reverse("optimization:recommendation-dismiss", args=[_open(filled).pk]), {"next": "https://evil.example/"}
    )
    assert evil["Location"] == reverse("optimization:overview")


@pytest.mark.parametrize(
    "target", ["optimization:overview", "admin:index", "{% templatetag openblock %}", "//evil.example/"]
)
def test_a_next_that_is_not_a_path_on_this_site_goes_back_to_the_overview(filled, client_for, target):
    # redirect() takes a bare word for a view name: that must not become a 500 or a jump elsewhere.
    recommendation = _open(filled)
    url = reverse("optimization:recommendation-dismiss", args=[recommendation.pk])
    response = client_for(filled.owner).post(url, {"next": target, "reason": "no"})
    assert response.status_code == 302 and response["Location"] == reverse("optimization:overview")
    recommendation.refresh_from_db()
    assert recommendation.status == "dismissed"


@pytest.mark.parametrize("role", ["viewer", "chatter"])
def test_viewer_and_chatter_cannot_decide(filled, client_for, role):
    client = client_for(filled.member(role))
    recommendation = _open(filled)
    html = client.get(reverse("optimization:overview"), {"creator": filled.creator.pk}).content.decode()
    assert reverse("optimization:recommendation-accept", args=[recommendation.pk]) not in html
    assert "Owners and managers accept or dismiss" in html
    for action in ("accept", "dismiss"):
        url = reverse(f"optimization:recommendation-{action}", args=[recommendation.pk])
        assert client.post(url, **HX).status_code == 403
    recommendation.refresh_from_db()
    assert recommendation.status == "open"


def test_decisions_on_another_tenants_objects_are_404(filled, other_world, client_for):
    client = client_for(other_world.owner)
    recommendation = _open(filled)
    anomaly = Anomaly.objects.filter(creator=filled.creator).first()
    assert client.post(reverse("optimization:recommendation-accept", args=[recommendation.pk])).status_code == 404
    assert client.post(reverse("optimization:recommendation-dismiss", args=[recommendation.pk])).status_code == 404
    assert client.post(reverse("optimization:anomaly-acknowledge", args=[anomaly.pk])).status_code == 404
    recommendation.refresh_from_db()
    assert recommendation.status == "open"


def test_decisions_need_post(filled, client_for):
    url = reverse("optimization:recommendation-accept", args=[_open(filled).pk])
    assert client_for(filled.owner).get(url).status_code == 405


def test_chatter_acknowledges_an_anomaly_of_their_creator_viewer_cannot(filled, client_for):
    anomaly = Anomaly.objects.filter(creator=filled.creator, status="open").first()
    url = reverse("optimization:anomaly-acknowledge", args=[anomaly.pk])
    assert client_for(filled.viewer).post(url, **HX).status_code == 403
    other = Anomaly.objects.filter(creator=filled.other_creator).first()
    if other is not None:
        other_url = reverse("optimization:anomaly-acknowledge", args=[other.pk])
        assert client_for(filled.chatter).post(other_url, **HX).status_code == 404
    response = client_for(filled.chatter).post(url, **HX)
    assert response.status_code == 200
    assert f'id="anomaly-{anomaly.pk}"' in response.content.decode() and "Acknowledged" in response.content.decode()
    anomaly.refresh_from_db()
    assert anomaly.status == "acknowledged"


def test_lists_filter_and_reject_bad_filters(filled, client_for):
    client = client_for(filled.owner)
    response = client.get(reverse("optimization:recommendations"), {"status": "nope", "kind": "price"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    html = client.get(reverse("optimization:recommendations"), {"kind": "anomaly"}).content.decode()
    assert "Investigate a change" in html and "PPV price</span>" not in html
    response = client.get(reverse("optimization:anomalies"), {"severity": "x", "creator": "abc", "page": "zz"})
    assert response.status_code == 200


def test_settings_save_default_and_override(world, client_for):
    client = client_for(world.manager)
    response = client.post(
        reverse("optimization:settings"),
        {"creator": "", "strategy": "revenue_max", "risk": "aggressive", "sensitivity": "high"},
    )
    assert response.status_code == 302
    default = OptimizationSettings.objects.get(agency=world.agency, creator__isnull=True)
    assert (default.strategy, default.risk, default.sensitivity) == ("revenue_max", "aggressive", "high")
    client.post(
        reverse("optimization:settings"),
        {"creator": world.creator.pk, "strategy": "conversion_max", "risk": "conservative", "sensitivity": "low",
         "explore_prices": "on"},
    )  # fmt: skip
    override = OptimizationSettings.objects.get(creator=world.creator)
    assert override.explore_prices and override.strategy == "conversion_max"
    html = client.get(reverse("optimization:settings"), {"creator": world.creator.pk}).content.decode()
    assert world.creator.display_name in html and 'value="conversion_max" selected' in html


def test_settings_bad_input_is_a_form_error(world, other_world, client_for):
    client = client_for(world.owner)
    response = client.post(reverse("optimization:settings"), {"strategy": "x", "risk": "y", "sensitivity": "z"})
    assert response.status_code == 200 and "Nothing was saved" in response.content.decode()
    response = client.post(
        reverse("optimization:settings"),
        {"creator": other_world.creator.pk, "strategy": "balanced", "risk": "moderate", "sensitivity": "medium"},
    )
    assert response.status_code == 200  # not one of the choices: a form error
    assert not OptimizationSettings.objects.filter(creator=other_world.creator).exists()


def test_creator_name_is_escaped_everywhere(world, client_for):
    world.creator.display_name = "<script>alert('x')</script>"
    world.creator.save()
    _fill(world)
    client = client_for(world.owner)
    for url in ("overview", "recommendations", "anomalies", "settings", "import"):
        html = client.get(reverse(f"optimization:{url}"), {"creator": world.creator.pk}).content.decode()
        assert "<script>alert('x')" not in html, url
        assert "&lt;script&gt;" in html, url
    home = client.get(reverse("core:dashboard")).content.decode()
    assert "<script>alert('x')" not in home


def test_dashboard_card(filled, client_for):
    html = client_for(filled.owner).get(reverse("core:dashboard")).content.decode()
    total = Recommendation.objects.filter(agency=filled.agency, status="open").count()
    assert total > 3
    assert f"<strong>{total}</strong> open recommendations" in html
    assert reverse("optimization:recommendations") in html
    chatter = client_for(filled.chatter).get(reverse("core:dashboard")).content.decode()
    mine = Recommendation.objects.filter(creator=filled.creator, status="open").count()
    assert f"<strong>{mine}</strong> open recommendation" in chatter


def _more_creators(world: World, count: int) -> None:
    for n in range(count):
        creator = CreatorFactory(agency=world.agency, display_name=f"Extra {n}")
        add_daily(creator, days=60, spike_days_ago=2, seed=10 + n)
        add_offers(creator, rounds=1, seed=20 + n)
    services.run_nightly(agency_id=world.agency.pk)


@pytest.mark.parametrize(
    ("name", "limit"),
    [("overview", 20), ("recommendations", 10), ("anomalies", 10), ("settings", 9), ("import", 8)],
)
def test_query_count_does_not_grow_with_creators_or_rows(
    filled, client_for, django_assert_max_num_queries, name, limit
):
    client = client_for(filled.owner)
    url = reverse(f"optimization:{name}")
    with django_assert_max_num_queries(limit):
        assert client.get(url).status_code == 200
    _more_creators(filled, 8)
    with django_assert_max_num_queries(limit):
        assert client.get(url).status_code == 200


def test_dashboard_card_query_count_is_constant(filled, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(filled.owner)
    client.get(reverse("core:dashboard"))
    with CaptureQueriesContext(connection) as before:
        client.get(reverse("core:dashboard"))
    _more_creators(filled, 6)
    client.get(reverse("core:dashboard"))  # new creators invalidate the cached plan snapshot: refill it
    with CaptureQueriesContext(connection) as after:
        client.get(reverse("core:dashboard"))
    for captured in (before, after):
        assert len([q for q in captured.captured_queries if '"optimization_' in q["sql"]]) == 2
    assert len(after.captured_queries) == len(before.captured_queries)


def test_acknowledged_anomalies_cost_the_overview_no_query_each(filled, client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    client = client_for(filled.owner)
    url = f"{reverse('optimization:overview')}?creator={filled.creator.pk}"
    client.get(url)
    with CaptureQueriesContext(connection) as none_acknowledged:
        assert client.get(url).status_code == 200
    acknowledged = Anomaly.objects.filter(creator=filled.creator).update(
        status="acknowledged", acknowledged_by=filled.manager.user, acknowledged_at=timezone.now()
    )
    assert acknowledged >= 2
    with CaptureQueriesContext(connection) as all_acknowledged:
        body = client.get(url).content.decode()
    assert "Acknowledged by" in body  # who acknowledged is shown
    assert len(all_acknowledged) == len(none_acknowledged)
