"""The gateway's vocabulary: requests, results, stream events and the one error type.

Plain dataclasses, no Django: providers, the fake server's tests and the benchmark import them
without touching the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal


class ErrorKind(StrEnum):
    RATE_LIMIT = "RATE_LIMIT"
    AUTHENTICATION = "AUTHENTICATION"
    INVALID_REQUEST = "INVALID_REQUEST"
    SERVER_ERROR = "SERVER_ERROR"
    NETWORK_ERROR = "NETWORK_ERROR"
    TIMEOUT = "TIMEOUT"
    CONTENT_FILTER = "CONTENT_FILTER"
    UNKNOWN = "UNKNOWN"


RETRYABLE_KINDS = frozenset({ErrorKind.RATE_LIMIT, ErrorKind.SERVER_ERROR, ErrorKind.NETWORK_ERROR, ErrorKind.TIMEOUT})


class AIError(Exception):
    """Every failure of a model call, whatever the provider: a kind, a message, retry advice."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
        provider: str = "",
        model: str = "",
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.retryable = self.kind in RETRYABLE_KINDS if retryable is None else retryable
        self.retry_after = retry_after
        self.provider = provider
        self.model = model
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"AIError({self.kind.value}, {self.message!r}, provider={self.provider!r}, retryable={self.retryable})"


Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass
class AIRequest:
    """One call to a model, as a feature asks for it.

    ``context`` carries structured data the built-in provider uses to write in the creator's
    voice (persona, niche, sample texts, words to avoid, language); remote providers see only
    ``system`` and ``messages``. ``cache`` None means "cache when the answer is deterministic"
    (temperature 0).
    """

    feature: str
    messages: list[Message]
    system: str = ""
    agency_id: int | None = None
    creator_id: int | None = None
    user_id: int | None = None
    provider: str | None = None
    model: str | None = None
    temperature: float = 0.7
    max_tokens: int = 512
    json_mode: bool = False
    cache: bool | None = None
    timeout: float | None = None
    context: dict[str, Any] = field(default_factory=dict)


MAX_TOKEN_COUNT = 2**31 - 1  # the ledger's token columns are 32-bit integers on PostgreSQL


def _token_count(value: Any) -> int:
    try:
        count = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return min(max(count, 0), MAX_TOKEN_COUNT)


@dataclass
class Usage:
    """Token counts. ``input_tokens`` includes ``cached_input_tokens`` (OpenAI's convention)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0

    def counted(self) -> Usage:
        """These counts as the price table and the ledger take them: whole numbers from 0 to
        MAX_TOKEN_COUNT, whatever a provider reported (12.0, a negative count, 3e9, null)."""
        return Usage(
            _token_count(self.input_tokens), _token_count(self.output_tokens), _token_count(self.cached_input_tokens)
        )


@dataclass
class ProviderResult:
    """What a provider returns for one successful call (or the end of one stream)."""

    text: str
    model: str
    usage: Usage
    finish_reason: str = "stop"


@dataclass
class AIResponse:
    text: str
    provider: str
    model: str
    usage: Usage
    cost_usd: Decimal
    latency_ms: float
    ttft_ms: float | None = None
    cache_hit: bool = False
    coalesced: bool = False
    attempts: int = 1
    fallback_used: bool = False
    degraded: bool = False
    finish_reason: str = "stop"


@dataclass
class StreamChunk:
    text: str


@dataclass
class StreamComplete:
    response: AIResponse


@dataclass
class StreamError:
    error: AIError
    partial_text: str = ""


StreamEvent = StreamChunk | StreamComplete | StreamError
