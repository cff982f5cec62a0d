"""fans pages."""

urlpatterns: list = []
