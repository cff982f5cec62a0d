from django.urls import path

from apps.studio import views

app_name = "studio"

urlpatterns = [
    path("studio/", views.studio, name="index"),
    path("studio/history/", views.history, name="history"),
    path("studio/ideas/", views.ideas, name="ideas"),
    path("studio/performance/", views.performance, name="performance"),
    path("studio/ideas/<int:idea_id>/", views.idea_update, name="idea-update"),
    path("studio/generations/<int:generation_id>/save/", views.generation_save, name="generation-save"),
    path(
        "studio/generations/<int:generation_id>/variations/<int:index>/regenerate/",
        views.variation_regenerate,
        name="variation-regenerate",
    ),
]
