from django.urls import path

from apps.notifications import views

app_name = "notifications"

urlpatterns = [
    path("notifications/", views.notification_list, name="notification-list"),
    path("notifications/preferences/", views.preferences_edit, name="preferences"),
    path("notifications/read-all/", views.notification_read_all, name="notification-read-all"),
    path("notifications/<int:notification_id>/read/", views.notification_read, name="notification-read"),
]
