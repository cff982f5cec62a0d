"""OpenAI, Azure OpenAI and any OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp,
Gemini's compatible endpoint), through the official ``openai`` SDK's async client.

The SDK's own retries are off (``max_retries=0``): the gateway retries, with its own budget,
backoff and breaker, so a failing provider is not hammered twice over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import openai

from apps.ai.egress import guarded_http_client
from apps.ai.providers.base import Provider
from apps.ai.providers.errors import map_sdk_error
from apps.ai.types import AIError, AIRequest, ErrorKind, ProviderResult, Usage

JSON_INSTRUCTION = "Answer with a single JSON object and nothing else."


class OpenAIChatProvider(Provider):
    def __init__(
        self,
        *,
        name: str,
        kind: str,
        models: tuple[str, ...],
        api_key: str,
        base_url: str | None = None,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        guarded: bool = False,
    ) -> None:
        if kind not in {"openai", "azure", "openai_compatible"}:
            raise ValueError(f"unknown OpenAI provider kind {kind!r}")
        self.name = name
        self.kind = kind
        self.models = models
        # The SDK's aiohttp transport: a streamed chunk costs about half the CPU it costs on the
        # default transport (docs/benchmarks.md, studio streaming). An agency's own connection
        # gets it behind the egress policy (apps/ai/egress.py).
        http_client = guarded_http_client() if guarded else openai.DefaultAioHttpClient()
        if kind == "azure":
            self.client: openai.AsyncOpenAI = openai.AsyncAzureOpenAI(
                api_key=api_key, azure_endpoint=azure_endpoint, api_version=api_version, max_retries=0,
                http_client=http_client,
            )  # fmt: skip
        else:
            # Local servers (Ollama, vLLM) accept any key; the SDK insists on a non-empty one.
            self.client = openai.AsyncOpenAI(
                api_key=api_key or "not-needed", base_url=base_url, max_retries=0, http_client=http_client
            )

    def _params(self, request: AIRequest, model: str, timeout: float) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        system = request.system
        if request.json_mode and "json" not in system.lower():
            system = f"{system}\n\n{JSON_INSTRUCTION}".strip()
        if system:
            messages.append({"role": "system", "content": system})
        messages.extend({"role": m.role, "content": m.content} for m in request.messages)
        params: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": request.temperature,
            "timeout": timeout,
        }
        # OpenAI's newer models only take max_completion_tokens; compatible servers know max_tokens.
        params["max_tokens" if self.kind == "openai_compatible" else "max_completion_tokens"] = request.max_tokens
        if request.json_mode:
            params["response_format"] = {"type": "json_object"}
        return params

    @staticmethod
    def _usage(usage: Mapping[str, Any] | None) -> Usage:
        if not usage:
            return Usage()
        details = usage.get("prompt_tokens_details") or {}
        return Usage(
            input_tokens=usage.get("prompt_tokens") or 0,
            output_tokens=usage.get("completion_tokens") or 0,
            cached_input_tokens=details.get("cached_tokens") or 0,
        )

    def _refused(self, model: str) -> AIError:
        return AIError(
            ErrorKind.CONTENT_FILTER,
            "The provider's content filter refused this request.",
            provider=self.name,
            model=model,
        )

    async def complete(self, request: AIRequest, model: str, timeout: float) -> ProviderResult:
        body = self._params(request, model, timeout)
        del body["timeout"]
        try:
            # The SDK's own request (auth, Azure deployment paths, status errors), with the body
            # we built as plain JSON types and the answer read as a dict: ``chat.completions.create``
            # walks every parameter through its TypedDict transform and builds a typed
            # ChatCompletion, about a third of the SDK's CPU per call (docs/profiles/).
            data = await self.client.post("/chat/completions", body=body, cast_to=object, options={"timeout": timeout})
        except Exception as exc:
            raise map_sdk_error(exc, provider=self.name, model=model) from exc
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            raise AIError(ErrorKind.SERVER_ERROR, "The provider returned no choices.", provider=self.name, model=model)
        choice = choices[0]
        finish_reason = choice.get("finish_reason")
        if finish_reason == "content_filter":
            raise self._refused(model)
        return ProviderResult(
            text=(choice.get("message") or {}).get("content") or "",
            model=data.get("model") or model,
            usage=self._usage(data.get("usage")),
            finish_reason=finish_reason or "stop",
        )

    async def stream(self, request: AIRequest, model: str, timeout: float) -> AsyncIterator[str | ProviderResult]:
        body = self._params(request, model, timeout)
        del body["timeout"]
        body.update(stream=True, stream_options={"include_usage": True})
        parts: list[str] = []
        usage = Usage()
        finish_reason = "stop"
        served_model = model
        try:
            # The SDK's own request, SSE decoding and in-stream error handling, but chunks as
            # plain dicts: building a typed ChatCompletionChunk costs ~0.1 ms, more than the
            # rest of a chunk's trip to the browser (docs/benchmarks.md, studio streaming).
            stream = await self.client.post(
                "/chat/completions", body=body, cast_to=object, options={"timeout": timeout},
                stream=True, stream_cls=openai.AsyncStream[object],
            )  # fmt: skip
            async for chunk in stream:
                served_model = chunk.get("model") or served_model
                choices = chunk.get("choices")
                if choices:
                    choice = choices[0]
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        parts.append(delta)
                        yield delta
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
                if chunk.get("usage") is not None:
                    usage = self._usage(chunk["usage"])
        except AIError:
            raise
        except Exception as exc:
            raise map_sdk_error(exc, provider=self.name, model=model) from exc
        if finish_reason == "content_filter":
            raise self._refused(model)
        yield ProviderResult(text="".join(parts), model=served_model, usage=usage, finish_reason=finish_reason)

    async def aclose(self) -> None:
        await self.client.close()
