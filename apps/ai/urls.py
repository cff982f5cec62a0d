from django.urls import path

from apps.ai import views

app_name = "ai"

urlpatterns = [
    path("settings/ai/", views.credential_list, name="credential-list"),
    path("settings/ai/<int:credential_id>/", views.credential_edit, name="credential-edit"),
    path("settings/ai/<int:credential_id>/delete/", views.credential_delete, name="credential-delete"),
    path("settings/ai/<int:credential_id>/test/", views.credential_test, name="credential-test"),
    path("ai/status/", views.provider_status, name="provider-status"),
]
