"""Map SDK exceptions (openai, anthropic) to AIError kinds, with Retry-After when sent."""

from __future__ import annotations

import email.utils
import time

import anthropic
import httpx2
import openai

from apps.ai.egress import refusal_in
from apps.ai.types import AIError, ErrorKind

STATUS_KINDS = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTHENTICATION,
    403: ErrorKind.AUTHENTICATION,
    404: ErrorKind.INVALID_REQUEST,
    408: ErrorKind.TIMEOUT,
    409: ErrorKind.SERVER_ERROR,
    413: ErrorKind.INVALID_REQUEST,
    422: ErrorKind.INVALID_REQUEST,
    429: ErrorKind.RATE_LIMIT,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def _status_kind(status: int, body: object) -> ErrorKind:
    text = str(body).lower()
    if status == 400 and "content_filter" in text:
        return ErrorKind.CONTENT_FILTER
    if status in STATUS_KINDS:
        return STATUS_KINDS[status]
    if status >= 500:
        return ErrorKind.SERVER_ERROR
    return ErrorKind.UNKNOWN


# Errors sent inside a stream arrive on an HTTP 200: their kind comes from the body's type.
BODY_TYPE_KINDS = {
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "overloaded_error": ErrorKind.SERVER_ERROR,
    "api_error": ErrorKind.SERVER_ERROR,
    "server_error": ErrorKind.SERVER_ERROR,
    "timeout_error": ErrorKind.TIMEOUT,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "permission_error": ErrorKind.AUTHENTICATION,
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "not_found_error": ErrorKind.INVALID_REQUEST,
}


def _body_type(body: object) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("type") or inner.get("code") or "")
    return ""


def _aiohttp_error(exc: BaseException, *, provider: str, model: str) -> AIError | None:
    """What the SDKs' aiohttp transport really saw. Its error table turns every broken connection
    into httpx's ConnectTimeout, so a stream cut mid-way would read as a timeout."""
    import aiohttp

    cause: BaseException | None = exc
    for _ in range(6):
        cause = cause.__cause__ or cause.__context__ if cause is not None else None
        if cause is None:
            return None
        if isinstance(cause, aiohttp.ServerTimeoutError | aiohttp.SocketTimeoutError):
            return AIError(
                ErrorKind.TIMEOUT, "The model provider did not answer in time.", provider=provider, model=model
            )
        if isinstance(cause, aiohttp.ClientConnectorError):
            return AIError(
                ErrorKind.NETWORK_ERROR, "Could not reach the model provider.", provider=provider, model=model
            )
        if isinstance(cause, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
            return AIError(
                ErrorKind.NETWORK_ERROR, "The connection to the model provider broke.", provider=provider, model=model
            )
    return None


def map_sdk_error(exc: BaseException, *, provider: str, model: str) -> AIError:
    if isinstance(exc, AIError):
        return exc
    refusal = refusal_in(exc)
    if refusal is not None:
        # The egress policy stopped the call before any connection: not worth a retry, but the
        # next provider may answer.
        return AIError(ErrorKind.NETWORK_ERROR, refusal.message, retryable=False, provider=provider, model=model)
    if isinstance(exc, httpx2.TransportError | openai.APIConnectionError | anthropic.APIConnectionError):
        transport = _aiohttp_error(exc, provider=provider, model=model)
        if transport is not None:
            return transport
    # The SDKs let some transport errors through unwrapped (a stream cut mid-way).
    if isinstance(exc, httpx2.TimeoutException):
        return AIError(ErrorKind.TIMEOUT, "The model provider did not answer in time.", provider=provider, model=model)
    if isinstance(exc, httpx2.TransportError):
        return AIError(
            ErrorKind.NETWORK_ERROR, "The connection to the model provider broke.", provider=provider, model=model
        )
    if isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
        return AIError(ErrorKind.TIMEOUT, "The model provider did not answer in time.", provider=provider, model=model)
    if isinstance(exc, openai.APIConnectionError | anthropic.APIConnectionError):
        return AIError(ErrorKind.NETWORK_ERROR, "Could not reach the model provider.", provider=provider, model=model)
    if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
        status = exc.status_code
        body = getattr(exc, "body", None)
        kind = _status_kind(status, body) if status >= 400 else BODY_TYPE_KINDS.get(_body_type(body), ErrorKind.UNKNOWN)
        message = _safe_message(exc)
        return AIError(
            kind,
            message,
            retry_after=parse_retry_after(exc.response.headers.get("retry-after")),
            provider=provider,
            model=model,
            status_code=status,
        )
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return AIError(
            ErrorKind.CONTENT_FILTER,
            "The provider's content filter refused this request.",
            provider=provider,
            model=model,
        )
    if isinstance(exc, openai.APIResponseValidationError | anthropic.APIResponseValidationError | ValueError):
        return AIError(
            ErrorKind.SERVER_ERROR, "The provider sent a malformed response.", provider=provider, model=model
        )
    if isinstance(exc, openai.APIError | anthropic.APIError):
        kind = BODY_TYPE_KINDS.get(_body_type(getattr(exc, "body", None)), ErrorKind.UNKNOWN)
        return AIError(kind, _safe_message(exc), provider=provider, model=model)
    if isinstance(exc, openai.OpenAIError | anthropic.AnthropicError):
        return AIError(ErrorKind.UNKNOWN, _safe_message(exc), provider=provider, model=model)
    if isinstance(exc, TimeoutError):
        return AIError(ErrorKind.TIMEOUT, "The model provider did not answer in time.", provider=provider, model=model)
    if isinstance(exc, OSError):
        return AIError(
            ErrorKind.NETWORK_ERROR, "The connection to the model provider failed.", provider=provider, model=model
        )
    return AIError(
        ErrorKind.UNKNOWN, f"Unexpected error from the provider ({type(exc).__name__}).", provider=provider, model=model
    )


def _safe_message(exc: BaseException) -> str:
    """The provider's own message, without anything that looks like a key."""
    body = getattr(exc, "body", None)
    message = ""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = str(inner.get("message") or "")
    message = message or str(exc)
    return redact(message)[:500]


def redact(text: str) -> str:
    import re

    return re.sub(r"(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]+|(sk-ant-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]+", r"\1\2…", text)
