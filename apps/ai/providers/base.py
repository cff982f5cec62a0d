"""The provider interface. Each provider maps its SDK's errors to ``AIError`` itself."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from apps.ai.types import AIRequest, ProviderResult


class Provider(ABC):
    #: instance name used in routing, breaker keys and the ledger ("openai", "anthropic", …)
    name: str
    #: implementation family: "openai", "azure", "openai_compatible", "anthropic", "builtin"
    kind: str
    #: models this instance serves, cheapest first
    models: tuple[str, ...]

    @abstractmethod
    async def complete(self, request: AIRequest, model: str, timeout: float) -> ProviderResult:
        """One non-streamed call. Raises AIError."""

    @abstractmethod
    def stream(self, request: AIRequest, model: str, timeout: float) -> AsyncIterator[str | ProviderResult]:
        """Yield text deltas, then exactly one ProviderResult (full text and usage). Raises AIError."""

    async def aclose(self) -> None:  # noqa: B027 (optional hook: providers without clients keep it)
        """Release connections (HTTP clients)."""
