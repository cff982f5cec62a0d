from django.urls import path

from apps.billing import views

app_name = "billing"

urlpatterns = [
    path("billing/", views.billing_overview, name="overview"),
    path("billing/checkout/", views.checkout, name="checkout"),
    path("billing/portal/", views.portal, name="portal"),
    path("billing/stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
    path("pricing/", views.pricing, name="pricing"),
]
