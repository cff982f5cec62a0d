from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "apps.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from apps.campaigns.events import delivery_moved
        from apps.campaigns.models import DELIVERY_SOURCE
        from apps.campaigns.services import campaign_requeue_rule
        from apps.delivery.services import delivery_requeue_rule_register
        from apps.delivery.signals import delivery_status_changed

        delivery_status_changed.connect(delivery_moved, dispatch_uid="campaigns.progress_event")
        # Staff's re-queue in the delivery admin asks the campaign, as the campaign page does.
        delivery_requeue_rule_register(source=DELIVERY_SOURCE, rule=campaign_requeue_rule)
