from django.urls import path

from apps.billing import views

app_name = "billing"

urlpatterns = [
    path("billing/", views.billing_overview, name="overview"),
    path("pricing/", views.pricing, name="pricing"),
]
