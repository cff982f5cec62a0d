from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "apps.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from apps.monitoring import celery_signals, event_metrics

        celery_signals.connect()
        event_metrics.connect()
