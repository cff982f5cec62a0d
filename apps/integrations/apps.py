from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    label = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from apps.core.events import subscribe
        from apps.integrations.crm import on_domain_event
        from apps.integrations.models import CRMEventKind

        for kind in CRMEventKind.values:  # outbound CRM webhooks (apps/integrations/crm.py)
            subscribe(kind, on_domain_event)
