"""segments pages."""

urlpatterns: list = []
