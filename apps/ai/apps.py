from django.apps import AppConfig


class AIConfig(AppConfig):
    name = "apps.ai"
    label = "ai"
    verbose_name = "AI gateway"

    def ready(self) -> None:
        from apps.ai import receivers  # noqa: F401  (connects the credential signals)
