from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "apps.messaging"
    label = "messaging"
    verbose_name = "Fans and inbox"

    def ready(self) -> None:
        from apps.messaging import receivers  # noqa: F401 (connects the delivery events it acts on)
