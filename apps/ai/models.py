"""AI gateway data: per-agency provider credentials (encrypted) and the request ledger."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.accounts.models import Agency, Creator, TenantQuerySet
from apps.core.crypto import EncryptedTextField


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    AZURE = "azure", "Azure OpenAI"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"
    ANTHROPIC = "anthropic", "Anthropic"


# The one URL field each kind may set; the others always talk to the provider's own API. Where
# such a URL may point is apps/ai/egress.py's business.
URL_FIELD_BY_KIND = {ProviderKind.OPENAI_COMPATIBLE: "base_url", ProviderKind.AZURE: "azure_endpoint"}
URL_FIELDS = ("base_url", "azure_endpoint")


class ProviderCredential(models.Model):
    """An agency's own key for a provider ("bring your own key"). The key is encrypted at rest."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="ai_credentials")
    kind = models.CharField(max_length=24, choices=ProviderKind.choices)
    label = models.CharField(max_length=60, help_text="A name for this connection, e.g. “OpenAI main”.")
    api_key = EncryptedTextField(blank=True)
    base_url = models.URLField(blank=True, help_text="OpenAI-compatible servers only, e.g. http://localhost:11434/v1")
    azure_endpoint = models.URLField(blank=True)
    azure_api_version = models.CharField(max_length=32, blank=True)
    model_names = models.JSONField(default=list, help_text="Model (or Azure deployment) names, cheapest first.")
    priority = models.PositiveSmallIntegerField(default=10, help_text="Lower is tried first.")
    is_enabled = models.BooleanField(default=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True)
    last_test_message = models.CharField(max_length=300, blank=True)
    last_test_latency_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["agency", "label"], name="credential_unique_label_per_agency"),
            models.CheckConstraint(condition=models.Q(kind__in=ProviderKind.values), name="credential_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(base_url="") | models.Q(kind=ProviderKind.OPENAI_COMPATIBLE),
                name="credential_base_url_compatible_only",
                violation_error_message="Only an OpenAI-compatible server takes a base URL.",
            ),
            models.CheckConstraint(
                condition=models.Q(azure_endpoint="") | models.Q(kind=ProviderKind.AZURE),
                name="credential_endpoint_azure_only",
                violation_error_message="Only Azure OpenAI takes an endpoint.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_kind_display()})"

    @property
    def provider_name(self) -> str:
        """The name routing, breakers and the ledger use for this connection."""
        return f"{self.kind}:{self.pk}"

    @property
    def key_hint(self) -> str:
        return f"…{self.api_key[-4:]}" if len(self.api_key) >= 8 else ("set" if self.api_key else "none")


class AIRequestLog(models.Model):
    """One ledger row per gateway call: who, what, which model, tokens, cost and how it went."""

    agency = models.ForeignKey(Agency, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    creator = models.ForeignKey(Creator, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    feature = models.CharField(max_length=60)
    provider = models.CharField(max_length=60, blank=True)
    model = models.CharField(max_length=120, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    price_version = models.CharField(max_length=20, blank=True)
    latency_ms = models.FloatField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    streamed = models.BooleanField(default=False)
    cache_hit = models.BooleanField(default=False)
    coalesced = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    fallback_used = models.BooleanField(default=False)
    degraded = models.BooleanField(default=False)
    error_kind = models.CharField(max_length=20, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name = "AI request"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["agency", "created_at"], name="ai_request_agency_time"),
            models.Index(fields=["provider", "model", "created_at"], name="ai_request_model_time"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(cost_usd__gte=0), name="ai_request_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.feature} via {self.provider}/{self.model}"
