"""Anthropic's Messages API through the official ``anthropic`` SDK's async client.

The SDK (2.x) no longer takes ``temperature``: Claude models choose their own sampling, so the
request's temperature only steers caching and coalescing for this provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic

from apps.ai.egress import guarded_http_client
from apps.ai.providers.base import Provider
from apps.ai.providers.errors import map_sdk_error
from apps.ai.types import AIError, AIRequest, ErrorKind, ProviderResult, Usage

JSON_INSTRUCTION = "Answer with a single JSON object and nothing else: no prose, no code fences."


class AnthropicProvider(Provider):
    kind = "anthropic"

    def __init__(
        self, *, name: str, models: tuple[str, ...], api_key: str, base_url: str | None = None, guarded: bool = False
    ) -> None:
        self.name = name
        self.models = models
        # The SDK's aiohttp transport, as for OpenAI; behind the egress policy for an agency's own key.
        http_client = guarded_http_client() if guarded else anthropic.DefaultAioHttpClient()
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, http_client=http_client
        )

    def _params(self, request: AIRequest, model: str, timeout: float) -> dict[str, Any]:
        system = request.system
        if request.json_mode:
            system = f"{system}\n\n{JSON_INSTRUCTION}".strip()
        params: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
            "timeout": timeout,
        }
        if system:
            params["system"] = system
        return params

    def _refused(self, model: str) -> AIError:
        return AIError(ErrorKind.CONTENT_FILTER, "The model refused this request.", provider=self.name, model=model)

    async def complete(self, request: AIRequest, model: str, timeout: float) -> ProviderResult:
        try:
            message = await self.client.messages.create(**self._params(request, model, timeout))
        except Exception as exc:
            raise map_sdk_error(exc, provider=self.name, model=model) from exc
        if message.stop_reason == "refusal":
            raise self._refused(model)
        text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
        usage = message.usage
        cached = getattr(usage, "cache_read_input_tokens", 0) or 0
        return ProviderResult(
            text=text,
            model=message.model or model,
            # Anthropic counts cache reads apart from input_tokens; Usage counts them inside.
            usage=Usage(
                input_tokens=(usage.input_tokens or 0) + cached,
                output_tokens=usage.output_tokens or 0,
                cached_input_tokens=cached,
            ),
            finish_reason=message.stop_reason or "end_turn",
        )

    async def stream(self, request: AIRequest, model: str, timeout: float) -> AsyncIterator[str | ProviderResult]:
        body = self._params(request, model, timeout)
        del body["timeout"]
        body["stream"] = True
        parts: list[str] = []
        usage = Usage()
        stop_reason = "end_turn"
        served_model = model
        try:
            # Events as plain dicts (the SDK still sends the request, decodes the SSE and raises
            # in-stream errors): typed event models cost more than the rest of the trip.
            stream = await self.client.post(
                "/v1/messages", body=body, cast_to=object, options={"timeout": timeout},
                stream=True, stream_cls=anthropic.AsyncStream[object],
            )  # fmt: skip
            async for event in stream:
                kind = event.get("type")
                if kind == "content_block_delta":
                    delta = event.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        parts.append(delta["text"])
                        yield delta["text"]
                elif kind == "message_start":
                    message = event.get("message") or {}
                    served_model = message.get("model") or model
                    start = message.get("usage") or {}
                    usage.cached_input_tokens = start.get("cache_read_input_tokens") or 0
                    usage.input_tokens = (start.get("input_tokens") or 0) + usage.cached_input_tokens
                elif kind == "message_delta":
                    stop_reason = (event.get("delta") or {}).get("stop_reason") or stop_reason
                    if (event.get("usage") or {}).get("output_tokens") is not None:
                        usage.output_tokens = event["usage"]["output_tokens"]
        except AIError:
            raise
        except Exception as exc:
            raise map_sdk_error(exc, provider=self.name, model=model) from exc
        if stop_reason == "refusal":
            raise self._refused(model)
        yield ProviderResult(text="".join(parts), model=served_model, usage=usage, finish_reason=stop_reason)

    async def aclose(self) -> None:
        await self.client.close()
