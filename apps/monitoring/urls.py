"""Monitoring pages (staff only), under /monitoring/."""

from django.urls import path

from apps.monitoring import cost_views, views

app_name = "monitoring"

urlpatterns = [
    path("monitoring/", views.overview, name="overview"),
    path("monitoring/alerts/", views.alert_list, name="alerts"),
    path("monitoring/slos/new/", views.slo_create, name="slo-create"),
    path("monitoring/slos/<int:slo_id>/edit/", views.slo_edit, name="slo-edit"),
    path("monitoring/slos/<int:slo_id>/delete/", views.slo_delete, name="slo-delete"),
    path("monitoring/webhooks/", views.webhook_list, name="webhooks"),
    path("monitoring/webhooks/<int:webhook_id>/delete/", views.webhook_delete, name="webhook-delete"),
    path("monitoring/webhooks/<int:webhook_id>/attempts/", views.webhook_attempts, name="webhook-attempts"),
    # AI cost pages (apps/monitoring/cost_views.py) go below this line.
    path("monitoring/cost/", cost_views.cost_dashboard, name="cost"),
    path("monitoring/cost/budgets/new/", cost_views.budget_create, name="budget-create"),
    path("monitoring/cost/budgets/<int:budget_id>/edit/", cost_views.budget_edit, name="budget-edit"),
    path("monitoring/cost/budgets/<int:budget_id>/delete/", cost_views.budget_delete, name="budget-delete"),
]
