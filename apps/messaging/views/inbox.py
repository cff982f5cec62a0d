"""inbox pages."""

urlpatterns: list = []
