"""Optimization pages, under /optimization/."""

from django.urls import path

from apps.optimization import views

app_name = "optimization"

urlpatterns = [
    path("optimization/", views.overview, name="overview"),
    path("optimization/recommendations/", views.recommendation_list, name="recommendations"),
    path(
        "optimization/recommendations/<int:recommendation_id>/accept/",
        views.recommendation_accept,
        name="recommendation-accept",
    ),
    path(
        "optimization/recommendations/<int:recommendation_id>/dismiss/",
        views.recommendation_dismiss,
        name="recommendation-dismiss",
    ),
    path("optimization/anomalies/", views.anomaly_list, name="anomalies"),
    path("optimization/anomalies/<int:anomaly_id>/acknowledge/", views.anomaly_acknowledge, name="anomaly-acknowledge"),
    path("optimization/settings/", views.settings_edit, name="settings"),
    path("optimization/import/", views.import_csv, name="import"),
]
