"""HTMX pages of the fan CRM and inbox, one module per area, each with its ``urlpatterns``."""
