from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "apps.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from apps.campaigns.events import delivery_moved
        from apps.delivery.signals import delivery_status_changed

        delivery_status_changed.connect(delivery_moved, dispatch_uid="campaigns.progress_event")
