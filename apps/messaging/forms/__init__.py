"""Forms of the fan CRM and inbox pages, one module per area. They validate shape only; the
services (apps/messaging/services.py) enforce the business rules and their errors are put back
on the forms with ``apps.core.errors.form_add_error``."""
