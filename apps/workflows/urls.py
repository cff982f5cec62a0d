"""Workflow pages, under /workflows/."""

from django.urls import path

from apps.workflows import views

app_name = "workflows"

urlpatterns = [
    path("workflows/", views.run_list, name="runs"),
    path("workflows/start/", views.run_start, name="start"),
    path("workflows/runs/<int:run_id>/", views.run_detail, name="run"),
    path("workflows/runs/<int:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("workflows/steps/<int:step_run_id>/retry/", views.step_retry, name="step-retry"),
    path("workflows/steps/<int:step_run_id>/skip/", views.step_skip, name="step-skip"),
]
