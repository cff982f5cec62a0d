"""A loopback fake of the OpenAI Chat Completions, Azure OpenAI and Anthropic Messages APIs.

It speaks the real wire protocols (JSON and server-sent events, the real error bodies) so the
official SDKs (``openai.AsyncOpenAI``, ``openai.AsyncAzureOpenAI``, ``anthropic.AsyncAnthropic``)
can be pointed at it with ``base_url`` and exercised end to end, faults included.

In-thread::

    with FakeLLMServer() as server:
        client = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="sk-test", max_retries=0)
        server.add_fault(Fault("status", status=429, retry_after="2"))

As a subprocess (the benchmark's way)::

    python -m tests.fakes.llm_server --port 0     # prints "READY http://127.0.0.1:PORT", serves until SIGINT/SIGTERM

and steer it over HTTP (``RemoteControl`` wraps these): ``POST /_control/faults``,
``POST /_control/reset``, ``POST /_control/config``, ``GET /_control/stats``.

Routes:
- ``POST /v1/chat/completions``                                            (api "openai")
- ``POST /openai/deployments/{deployment}/chat/completions?api-version=``  (api "openai", Azure)
- ``POST /v1/messages``                                                    (api "anthropic")
- ``POST /v1/moderations``                                                 (api "moderation")

Moderation answers in OpenAI's format (every category, scores, applied input types); an input
containing one of ``moderation_flagged`` (case-insensitive) is flagged ``sexual`` and
``sexual/minors``, anything else is not flagged. Faults added for api "moderation" of kind
``status``, ``hang`` and ``drip`` apply, and ``malformed_chunk`` answers 200 with results that are not in
OpenAI's shape (each result's ``categories`` a list of names instead of an object).

Answers: ``reply_text`` for every completion, unless ``reply_queue`` holds answers, which are used
one per completion in arrival order first. Every request is recorded (``requests``); a recorded
request's ``prompt`` is all the text the model was given, for tests that check what reached it.

Usage, unless ``usage_override`` says otherwise: input tokens = whitespace-separated words of every
message's text (plus ``system`` for Anthropic), output tokens = the number of streamed chunks
(``ceil(len(reply_text) / chunk_size)``), cached 0; a stream and a plain call of the same request
report the same numbers. The override's numbers are sent as they are (floats and negatives too).

No Django here: this module imports only the standard library and aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from aiohttp import web

__all__ = ["DEFAULT_REPLY", "FAULT_KINDS", "FakeLLMServer", "Fault", "RecordedRequest", "RemoteControl"]

DEFAULT_REPLY = "Hello from the fake model."
APIS = ("openai", "anthropic", "moderation")
FAULT_KINDS = frozenset(
    {
        "status",
        "slow_first_byte",
        "hang",
        "drop_mid_stream",
        "malformed_chunk",
        "content_filter",
        "stream_error",
        "stall_mid_stream",
        "drip",
    }
)

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# status -> (OpenAI error type, OpenAI error code, message)
_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (fake)."),
    401: ("authentication_error", "invalid_api_key", "Incorrect API key provided (fake)."),
    403: ("permission_error", "unsupported_country_region_territory", "Permission denied (fake)."),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it (fake).",
    ),
    408: ("timeout_error", None, "Request timed out (fake)."),
    409: ("invalid_request_error", "conflict", "Conflict (fake)."),
    413: ("invalid_request_error", "request_too_large", "Request too large (fake)."),
    422: ("invalid_request_error", None, "Unprocessable entity (fake)."),
    429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached for requests (fake)."),
    500: ("server_error", None, "The server had an error while processing your request (fake)."),
    502: ("server_error", None, "Bad gateway (fake)."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later (fake)."),
    504: ("server_error", None, "Gateway timeout (fake)."),
    529: ("server_error", None, "The server is overloaded (fake)."),
}
# status -> (Anthropic error type, message)
_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (fake)."),
    401: ("authentication_error", "invalid x-api-key (fake)"),
    402: ("billing_error", "Billing problem (fake)."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource (fake)."),
    404: ("not_found_error", "The requested resource could not be found (fake)."),
    408: ("timeout_error", "Request timed out (fake)."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes (fake)."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit (fake)."),
    500: ("api_error", "Internal server error (fake)."),
    502: ("api_error", "Bad gateway (fake)."),
    503: ("api_error", "Service unavailable (fake)."),
    504: ("timeout_error", "Gateway timeout (fake)."),
    529: ("overloaded_error", "Overloaded (fake)."),
}


@dataclass
class Fault:
    """One misbehaviour to inflict on a request.

    kinds:
    - ``status``: an error response (``status``, optional ``retry_after`` header, optional
      ``message`` / ``error_type`` / ``code`` to override the body's fields).
    - ``slow_first_byte``: wait ``delay`` seconds, then answer normally.
    - ``hang``: never answer (until the client gives up or the server stops).
    - ``drop_mid_stream``: stream ``after_chunks`` content events then cut the connection (no
      terminating chunk); a non-stream request has its connection closed before any response.
    - ``stall_mid_stream`` (extra): stream ``after_chunks`` content events, then send nothing more
      with the connection left open (until the client gives up or the server stops).
    - ``malformed_chunk``: after ``after_chunks`` content events send one ``data:`` line that is
      not JSON (then the rest of the stream); a non-stream request gets a truncated JSON body; a
      moderation request gets valid JSON not in OpenAI's shape (see the module docstring).
    - ``content_filter``: OpenAI ``finish_reason: "content_filter"`` with no content; Anthropic
      ``stop_reason: "refusal"``.
    - ``drip`` (extra): answer 200 and send the body a space every ``delay`` seconds, each read
      quick and the answer never done, until the client gives up or the server stops.
    - ``stream_error`` (extra): after ``after_chunks`` content events, the in-stream error each
      API really sends (Anthropic ``event: error``, OpenAI ``data: {"error": ...}``) for ``status``;
      a non-stream request gets the ``status`` error response.
    """

    kind: str
    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    after_chunks: int = 0
    message: str | None = None
    error_type: str | None = None
    code: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        self.status = int(self.status)
        if self.retry_after is not None:
            self.retry_after = str(self.retry_after)
        self.delay = float(self.delay)
        self.after_chunks = max(0, int(self.after_chunks))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)


@dataclass
class RecordedRequest:
    api: str  # "openai" (Azure included), "anthropic" or "moderation"
    path: str
    headers: dict[str, str]  # lower-case keys
    json: Any  # the parsed body, as received (not copied)
    time: float  # time.time() on arrival
    query: dict[str, str] = field(default_factory=dict)

    @property
    def stream(self) -> bool:
        return isinstance(self.json, dict) and bool(self.json.get("stream"))

    @property
    def prompt(self) -> str:
        """Every text the model was given, in order (Anthropic's ``system``, then each message's
        text), joined by blank lines: what a test reads to check what reached the model."""
        if not isinstance(self.json, dict):
            return ""
        texts: list[str] = []
        system = self.json.get("system")
        if isinstance(system, str):
            texts.append(system)
        elif isinstance(system, list):
            texts += [part.get("text", "") for part in system if isinstance(part, dict)]
        for message in self.json.get("messages") or []:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts += [part.get("text", "") for part in content if isinstance(part, dict)]
        return "\n\n".join(texts)


@dataclass
class _Settings:
    reply_text: str
    chunk_size: int
    latency: float
    usage_override: dict | None
    chunk_delay: float
    azure_filter_results: bool


@dataclass
class _Call:
    """Everything one completion needs, computed once per request."""

    api: str
    azure: bool
    model: str
    stream: bool
    include_usage: bool
    chunks: list[str]
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_creation_tokens: int
    settings: _Settings
    fault: Fault | None


def _words(content: Any) -> int:
    """Whitespace-separated words of a message content: a string or a list of content parts."""
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, str):
                total += len(part.split())
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    total += len(text.split())
                elif part.get("type") == "tool_result":
                    total += _words(part.get("content"))
        return total
    return 0


class FakeLLMServer:
    """See the module docstring. Settings are plain attributes; change them from any thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._faults: list[list[Any]] = []  # [fault, remaining, api|None]
        self.requests: list[RecordedRequest] = []
        self._counts: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._started = False
        self._reset_settings()

    # -- settings --------------------------------------------------------------------------

    def _reset_settings(self) -> None:
        self.reply_text: str = DEFAULT_REPLY
        self.chunk_size: int = 5
        self.latency: float = 0.0
        self.usage_override: dict | None = None
        self.chunk_delay: float = 0.0  # extra: seconds between streamed events
        self.azure_filter_results: bool = True  # extra: Azure's prompt_filter_results first chunk
        self.moderation_flagged: list[str] = []  # extra: inputs containing one of these are flagged
        self.reply_queue: list[str] = []  # extra: answers used in turn, one per completion, before reply_text

    def configure(self, **settings: Any) -> None:
        """Set any of reply_text, chunk_size, latency, usage_override, chunk_delay, azure_filter_results,
        moderation_flagged, reply_queue."""
        allowed = {
            "reply_text", "chunk_size", "latency", "usage_override", "chunk_delay", "azure_filter_results",
            "moderation_flagged", "reply_queue",
        }  # fmt: skip
        unknown = set(settings) - allowed
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        if "reply_text" in settings:
            self.reply_text = str(settings["reply_text"])
        if "chunk_size" in settings:
            size = int(settings["chunk_size"])
            if size < 1:
                raise ValueError("chunk_size must be >= 1")
            self.chunk_size = size
        if "latency" in settings:
            self.latency = max(0.0, float(settings["latency"]))
        if "usage_override" in settings:
            override = settings["usage_override"]
            if override is not None and not isinstance(override, dict):
                raise ValueError("usage_override must be a dict or null")
            self.usage_override = dict(override) if override is not None else None
        if "chunk_delay" in settings:
            self.chunk_delay = max(0.0, float(settings["chunk_delay"]))
        if "azure_filter_results" in settings:
            self.azure_filter_results = bool(settings["azure_filter_results"])
        if "moderation_flagged" in settings:
            self.moderation_flagged = [str(s) for s in settings["moderation_flagged"]]
        if "reply_queue" in settings:
            with self._lock:
                self.reply_queue = [str(s) for s in settings["reply_queue"]]

    def _snapshot(self) -> _Settings:
        return _Settings(
            reply_text=self.reply_text,
            chunk_size=max(1, int(self.chunk_size)),
            latency=self.latency,
            usage_override=self.usage_override,
            chunk_delay=self.chunk_delay,
            azure_filter_results=self.azure_filter_results,
        )

    # -- faults, records ---------------------------------------------------------------------

    def add_fault(self, fault: Fault, times: int = 1, api: str | None = None) -> None:
        if not isinstance(fault, Fault):
            raise TypeError("fault must be a Fault")
        if api is not None and api not in APIS:
            raise ValueError(f"api must be one of {APIS} or None")
        if times < 1:
            return
        with self._lock:
            self._faults.append([fault, int(times), api])

    def _take_fault(self, api: str, *, exact: bool = False) -> Fault | None:
        """The next fault for ``api`` (``exact``: only one added for that api, not for any)."""
        if not self._faults:  # fast path, no lock
            return None
        with self._lock:
            for i, entry in enumerate(self._faults):
                if entry[2] == api or (entry[2] is None and not exact):
                    entry[1] -= 1
                    if entry[1] <= 0:
                        del self._faults[i]
                    return entry[0]
        return None

    def pending_faults(self) -> int:
        with self._lock:
            return sum(entry[1] for entry in self._faults)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests = []
            self._counts = {}
            self._reset_settings()

    def count(self, api: str | None = None) -> int:
        with self._lock:
            if api is None:
                return sum(self._counts.values())
            return self._counts.get(api, 0)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": sum(self._counts.values()),
                "by_api": dict(self._counts),
                "pending_faults": sum(entry[1] for entry in self._faults),
            }

    def _record(self, api: str, request: web.Request, body: Any) -> None:
        rec = RecordedRequest(
            api=api,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=body,
            time=time.time(),
            query=dict(request.query) if request.query_string else {},
        )
        with self._lock:
            self.requests.append(rec)
            self._counts[api] = self._counts.get(api, 0) + 1

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def azure_endpoint(self) -> str:
        return self.base_url

    def start(self) -> FakeLLMServer:
        if self._started:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve_setup())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"FakeLLMServer:{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("FakeLLMServer did not start in 15 s")
        if failure:
            self._thread.join(5)
            raise failure[0]
        self._started = True
        return self

    async def _serve_setup(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._openai_handler)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure_handler)
        app.router.add_post("/v1/messages", self._anthropic_handler)
        app.router.add_post("/v1/moderations", self._moderation_handler)
        app.router.add_post("/_control/faults", self._control_faults)
        app.router.add_post("/_control/reset", self._control_reset)
        app.router.add_post("/_control/config", self._control_config)
        app.router.add_get("/_control/stats", self._control_stats)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,  # a client that gives up cancels its (hanging) handler
            shutdown_timeout=0.5,
            keepalive_timeout=75.0,
        )
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(2048)
        sock.setblocking(False)
        site = web.SockSite(runner, sock)
        await site.start()
        self.port = sock.getsockname()[1]
        self._runner = runner

    def stop(self) -> None:
        if not self._started or self._loop is None or self._thread is None:
            return
        self._started = False
        loop = self._loop

        async def shutdown() -> None:
            assert self._stopping is not None
            self._stopping.set()
            await asyncio.sleep(0)
            if self._runner is not None:
                await self._runner.cleanup()

        with contextlib.suppress(Exception):  # best effort: the loop is stopped below anyway
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(15)
        self._thread = None
        self._loop = None
        self._runner = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request plumbing --------------------------------------------------------------------

    async def _read_json(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return _INVALID

    def _usage(self, settings: _Settings, input_tokens: int, output_tokens: int) -> tuple[int, int, int, int]:
        cached = creation = 0
        override = settings.usage_override
        if override:
            # As given, not made whole: tests send what a misbehaving server might (12.0, -3, 3e9).
            input_tokens = override.get("input_tokens", input_tokens)
            output_tokens = override.get("output_tokens", output_tokens)
            cached = override.get("cached_input_tokens", 0)
            creation = override.get("cache_creation_input_tokens", 0)
        return input_tokens, output_tokens, cached, creation

    def _make_call(self, api: str, azure: bool, model: str, body: dict, input_words: int) -> _Call:
        settings = self._snapshot()
        fault = self._take_fault(api)
        text = settings.reply_text
        if self.reply_queue:
            with self._lock:
                if self.reply_queue:
                    text = self.reply_queue.pop(0)
        size = settings.chunk_size
        if fault is not None and fault.kind == "content_filter":
            chunks: list[str] = []
        else:
            chunks = [text[i : i + size] for i in range(0, len(text), size)]
        output_tokens = len(chunks)
        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
        inp, out, cached, creation = self._usage(settings, input_words, output_tokens)
        return _Call(
            api=api,
            azure=azure,
            model=model,
            stream=bool(body.get("stream")),
            include_usage=include_usage,
            chunks=chunks,
            input_tokens=inp,
            output_tokens=out,
            cached_tokens=cached,
            cache_creation_tokens=creation,
            settings=settings,
            fault=fault,
        )

    async def _before_first_byte(self, call: _Call, request: web.Request) -> web.StreamResponse | None:
        """Latency and the faults that act before anything is sent; a response ends the request."""
        if call.settings.latency > 0:
            await asyncio.sleep(call.settings.latency)
        fault = call.fault
        if fault is None:
            return None
        if fault.kind == "slow_first_byte":
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            return None
        if fault.kind == "hang":
            assert self._stopping is not None
            await self._stopping.wait()
            return _abort(request)
        if fault.kind == "drip":
            return await self._drip(request, fault.delay)
        if fault.kind == "status" or (fault.kind == "stream_error" and not call.stream):
            return self._error_response(call.api, fault.status, fault)
        if fault.kind in ("drop_mid_stream", "stall_mid_stream") and not call.stream:
            return _abort(request)
        return None

    async def _drip(self, request: web.Request, delay: float) -> web.StreamResponse:
        """A 200 whose JSON body never ends: a space (valid JSON whitespace) every ``delay`` seconds."""
        assert self._stopping is not None
        resp = web.StreamResponse(status=200, headers={"content-type": "application/json"})
        await resp.prepare(request)
        try:
            while not self._stopping.is_set():
                await resp.write(b" ")
                await asyncio.sleep(max(delay, 0.01))
        except (ConnectionError, RuntimeError):  # the client gave up
            pass
        return _abort(request, resp)

    def _bad_request(self, api: str, message: str, code: str | None = None) -> web.Response:
        return self._error_response(api, 400, Fault("status", status=400, message=message, code=code))

    def _error_response(self, api: str, status: int, fault: Fault | None = None) -> web.Response:
        headers = {}
        if fault is not None and fault.retry_after is not None:
            headers["retry-after"] = fault.retry_after
        if api == "anthropic":
            headers["request-id"] = "req_" + secrets.token_hex(12)
            body = _anthropic_error_body(status, fault)
        else:
            headers["x-request-id"] = "req_" + secrets.token_hex(16)
            body = _openai_error_body(status, fault)
        return web.Response(status=status, body=_dumps(body).encode(), content_type="application/json", headers=headers)

    # -- OpenAI / Azure ----------------------------------------------------------------------

    async def _openai_handler(self, request: web.Request) -> web.StreamResponse:
        return await self._openai(request, deployment=None)

    async def _azure_handler(self, request: web.Request) -> web.StreamResponse:
        return await self._openai(request, deployment=request.match_info["deployment"])

    async def _openai(self, request: web.Request, deployment: str | None) -> web.StreamResponse:
        azure = deployment is not None
        body = await self._read_json(request)
        self._record("openai", request, None if body is _INVALID else body)
        if azure and "api-version" not in request.query:
            return web.Response(
                status=404,
                body=_dumps({"error": {"code": "404", "message": "Resource not found"}}).encode(),
                content_type="application/json",
            )
        if not isinstance(body, dict):
            return self._bad_request("openai", "We could not parse the JSON body of your request.")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._bad_request("openai", "'messages' is a required property", "missing_required_parameter")
        model = body.get("model") or deployment
        if not model:
            return self._bad_request("openai", "you must provide a model parameter", "missing_required_parameter")
        words = sum(_words(m.get("content")) for m in messages if isinstance(m, dict))
        call = self._make_call("openai", azure, str(model), body, words)

        early = await self._before_first_byte(call, request)
        if early is not None:
            return early
        if call.stream:
            return await self._openai_stream(request, call)
        return self._openai_json(request, call)

    def _openai_usage(self, call: _Call) -> dict[str, Any]:
        return {
            "prompt_tokens": call.input_tokens,
            "completion_tokens": call.output_tokens,
            "total_tokens": call.input_tokens + call.output_tokens,
            "prompt_tokens_details": {"cached_tokens": call.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _openai_json(self, request: web.Request, call: _Call) -> web.StreamResponse:
        filtered = call.fault is not None and call.fault.kind == "content_filter"
        choice: dict[str, Any] = {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None if filtered else "".join(call.chunks),
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "content_filter" if filtered else "stop",
        }
        payload: dict[str, Any] = {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [choice],
            "usage": self._openai_usage(call),
            "system_fingerprint": "fp_fake",
        }
        if call.azure:
            payload["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": _azure_filter_results()}]
            choice["content_filter_results"] = _azure_filter_results(filtered=filtered)
        else:
            payload["service_tier"] = "default"
        headers = {"x-request-id": "req_" + secrets.token_hex(16), "openai-processing-ms": "1"}
        data = _dumps(payload).encode()
        if call.fault is not None and call.fault.kind == "malformed_chunk":
            data = data[: max(1, len(data) // 2)]
        return web.Response(body=data, content_type="application/json", headers=headers)

    async def _openai_stream(self, request: web.Request, call: _Call) -> web.StreamResponse:
        cid = "chatcmpl-" + secrets.token_hex(12)
        created = int(time.time())
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": call.model}
        if not call.azure:
            base["service_tier"] = "default"
        base["system_fingerprint"] = "fp_fake"

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            obj = dict(base)
            ch: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            if call.azure and finish_reason is not None:
                filtered = finish_reason == "content_filter"
                ch["content_filter_results"] = _azure_filter_results(filtered=True) if filtered else {}
            obj["choices"] = [ch]
            if call.include_usage:
                obj["usage"] = None
            return b"data: " + _dumps(obj).encode() + b"\n\n"

        head: list[bytes] = []
        if call.azure and call.settings.azure_filter_results:
            head.append(
                b"data: "
                + _dumps(
                    {
                        "choices": [],
                        "created": 0,
                        "id": "",
                        "model": "",
                        "object": "",
                        "prompt_filter_results": [
                            {"prompt_index": 0, "content_filter_results": _azure_filter_results()}
                        ],
                    }
                ).encode()
                + b"\n\n"
            )
        head.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        content = [chunk({"content": piece}) for piece in call.chunks]
        filtered = call.fault is not None and call.fault.kind == "content_filter"
        tail = [chunk({}, "content_filter" if filtered else "stop")]
        if call.include_usage:
            final = dict(base)
            final["choices"] = []
            final["usage"] = self._openai_usage(call)
            tail.append(b"data: " + _dumps(final).encode() + b"\n\n")
        tail.append(b"data: [DONE]\n\n")

        headers = {"x-request-id": "req_" + secrets.token_hex(16), "openai-processing-ms": "1"}
        return await self._send_sse(request, call, head, content, tail, headers, openai_error=True)

    # -- Anthropic ---------------------------------------------------------------------------

    async def _anthropic_handler(self, request: web.Request) -> web.StreamResponse:
        body = await self._read_json(request)
        self._record("anthropic", request, None if body is _INVALID else body)
        if not isinstance(body, dict):
            return self._bad_request("anthropic", "There was an error parsing the body of your request.")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._bad_request("anthropic", "messages: Field required")
        if not body.get("model"):
            return self._bad_request("anthropic", "model: Field required")
        if "max_tokens" not in body:
            return self._bad_request("anthropic", "max_tokens: Field required")
        words = sum(_words(m.get("content")) for m in messages if isinstance(m, dict)) + _words(body.get("system"))
        call = self._make_call("anthropic", False, str(body["model"]), body, words)

        early = await self._before_first_byte(call, request)
        if early is not None:
            return early
        if call.stream:
            return await self._anthropic_stream(request, call)
        return self._anthropic_json(call)

    def _anthropic_usage(self, call: _Call, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": call.input_tokens,
            "cache_creation_input_tokens": call.cache_creation_tokens,
            "cache_read_input_tokens": call.cached_tokens,
            "output_tokens": output_tokens,
        }

    def _anthropic_json(self, call: _Call) -> web.StreamResponse:
        refused = call.fault is not None and call.fault.kind == "content_filter"
        text = "".join(call.chunks)
        usage = self._anthropic_usage(call, call.output_tokens)
        usage["service_tier"] = "standard"
        payload = {
            "id": "msg_" + secrets.token_hex(12),
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": "refusal" if refused else "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if refused:
            payload["stop_details"] = {"type": "refusal", "category": None, "explanation": None}
        data = _dumps(payload).encode()
        if call.fault is not None and call.fault.kind == "malformed_chunk":
            data = data[: max(1, len(data) // 2)]
        return web.Response(
            body=data, content_type="application/json", headers={"request-id": "req_" + secrets.token_hex(12)}
        )

    async def _anthropic_stream(self, request: web.Request, call: _Call) -> web.StreamResponse:
        refused = call.fault is not None and call.fault.kind == "content_filter"

        def event(name: str, data: dict[str, Any]) -> bytes:
            return b"event: " + name.encode() + b"\ndata: " + _dumps(data).encode() + b"\n\n"

        start_usage = self._anthropic_usage(call, min(1, call.output_tokens))
        start_usage["service_tier"] = "standard"
        head = [
            event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_" + secrets.token_hex(12),
                        "type": "message",
                        "role": "assistant",
                        "model": call.model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
            )
        ]
        content: list[bytes] = []
        tail: list[bytes] = []
        if call.chunks:
            head.append(
                event(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                )
            )
            head.append(event("ping", {"type": "ping"}))
            content = [
                event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                )
                for piece in call.chunks
            ]
            tail.append(event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        else:
            head.append(event("ping", {"type": "ping"}))
        delta: dict[str, Any] = {"stop_reason": "refusal" if refused else "end_turn", "stop_sequence": None}
        if refused:
            delta["stop_details"] = {"type": "refusal", "category": None, "explanation": None}
        tail.append(
            event(
                "message_delta",
                {"type": "message_delta", "delta": delta, "usage": self._anthropic_usage(call, call.output_tokens)},
            )
        )
        tail.append(event("message_stop", {"type": "message_stop"}))
        return await self._send_sse(
            request, call, head, content, tail, {"request-id": "req_" + secrets.token_hex(12)}, openai_error=False
        )

    # -- SSE writer --------------------------------------------------------------------------

    async def _send_sse(
        self,
        request: web.Request,
        call: _Call,
        head: list[bytes],
        content: list[bytes],
        tail: list[bytes],
        headers: dict[str, str],
        *,
        openai_error: bool,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers=headers)
        resp.content_type = "text/event-stream"
        resp.charset = "utf-8"
        resp.headers["cache-control"] = "no-cache"
        await resp.prepare(request)

        fault = call.fault
        kind = fault.kind if fault is not None else None
        if kind in ("drop_mid_stream", "malformed_chunk", "stream_error", "stall_mid_stream"):
            assert fault is not None
            n = min(fault.after_chunks, len(content))
            prefix = b"".join(head) + b"".join(content[:n])
            if kind == "stall_mid_stream":
                await resp.write(prefix)
                await _flush(request)
                assert self._stopping is not None
                await self._stopping.wait()  # or cancelled when the client gives up
                return _abort(request, resp)
            if kind == "drop_mid_stream":
                await resp.write(prefix)
                await _flush(request)
                return _abort(request, resp)
            if kind == "stream_error":
                if openai_error:
                    body = _openai_error_body(fault.status, fault)
                    bad = b"data: " + _dumps(body).encode() + b"\n\n"
                else:
                    bad = (
                        b"event: error\ndata: " + _dumps(_anthropic_error_body(fault.status, fault)).encode() + b"\n\n"
                    )
                await resp.write(prefix + bad)
                await resp.write_eof()
                return resp
            # malformed_chunk: one data line that is not JSON, then the rest of the stream
            if openai_error:
                bad = b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": "oops\n\n'
            else:
                bad = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n'
            try:
                await resp.write(prefix + bad + b"".join(content[n:]) + b"".join(tail))
                await resp.write_eof()
            except ConnectionError:
                pass
            return resp

        delay = call.settings.chunk_delay
        if delay > 0:
            for piece in head:
                await resp.write(piece)
            for piece in content:
                await asyncio.sleep(delay)
                await resp.write(piece)
            await asyncio.sleep(delay)
            await resp.write(b"".join(tail))
        else:
            await resp.write(b"".join(head) + b"".join(content) + b"".join(tail))
        await resp.write_eof()
        return resp

    # -- moderation --------------------------------------------------------------------------

    async def _moderation_handler(self, request: web.Request) -> web.StreamResponse:
        body = await self._read_json(request)
        self._record("moderation", request, None if body is _INVALID else body)
        if not isinstance(body, dict) or "input" not in body:
            return self._bad_request("openai", "'input' is a required property", "missing_required_parameter")
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if not all(isinstance(item, str) for item in inputs):
            return self._bad_request("openai", "Only text inputs are supported by this fake.")
        fault = self._take_fault("moderation", exact=True)  # faults for any api are the completions'
        if fault is not None and fault.kind == "hang":
            assert self._stopping is not None
            await self._stopping.wait()
            return _abort(request)
        if fault is not None and fault.kind == "status":
            return self._error_response("openai", fault.status, fault)
        if fault is not None and fault.kind == "drip":
            return await self._drip(request, fault.delay)
        malformed = fault is not None and fault.kind == "malformed_chunk"
        flagged_words = [word.casefold() for word in self.moderation_flagged]
        results = []
        for text in inputs:
            flagged = any(word in text.casefold() for word in flagged_words)
            categories = dict.fromkeys(_MODERATION_CATEGORIES, False)
            if flagged:
                categories["sexual"] = categories["sexual/minors"] = True
            results.append(
                {
                    "flagged": flagged,
                    "categories": [c for c, on in categories.items() if on] if malformed else categories,
                    "category_scores": {c: 0.97 if on else 0.0001 for c, on in categories.items()},
                    "category_applied_input_types": {c: ["text"] for c in categories},
                }
            )
        payload = {
            "id": "modr-" + secrets.token_hex(12),
            "model": str(body.get("model") or "omni-moderation-latest"),
            "results": results,
        }
        headers = {"x-request-id": "req_" + secrets.token_hex(16), "openai-processing-ms": "1"}
        return web.Response(body=_dumps(payload).encode(), content_type="application/json", headers=headers)

    # -- control endpoints -------------------------------------------------------------------

    async def _control_faults(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            fault = Fault.from_dict(dict(data["fault"]))
            times = int(data.get("times", 1))
            self.add_fault(fault, times=times, api=data.get("api"))
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "pending_faults": self.pending_faults()})

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _control_config(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            self.configure(**data)
        except (ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "config": self.config()})

    async def _control_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    def config(self) -> dict[str, Any]:
        s = self._snapshot()
        return {
            "reply_text": s.reply_text,
            "chunk_size": s.chunk_size,
            "latency": s.latency,
            "usage_override": s.usage_override,
            "chunk_delay": s.chunk_delay,
            "azure_filter_results": s.azure_filter_results,
        }


_INVALID = object()
_MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)  # fmt: skip


def _abort(request: web.Request, resp: web.StreamResponse | None = None) -> web.StreamResponse:
    """Cut the TCP connection now, without a (complete) response."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return resp if resp is not None else web.Response(status=499)


async def _flush(request: web.Request) -> None:
    """Wait until what was written has left the process, so an abort cannot eat it."""
    transport = request.transport
    for _ in range(500):
        if transport is None or transport.is_closing() or transport.get_write_buffer_size() == 0:
            return
        await asyncio.sleep(0.002)


def _azure_filter_results(filtered: bool = False) -> dict[str, Any]:
    ok = {"filtered": False, "severity": "safe"}
    results = {"hate": dict(ok), "self_harm": dict(ok), "sexual": dict(ok), "violence": dict(ok)}
    if filtered:
        results["sexual"] = {"filtered": True, "severity": "high"}
    return results


def _openai_error_body(status: int, fault: Fault | None) -> dict[str, Any]:
    etype, code, message = _OPENAI_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"Error {status} (fake).")
    )
    if fault is not None:
        etype = fault.error_type or etype
        code = fault.code if fault.code is not None else code
        message = fault.message or message
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def _anthropic_error_body(status: int, fault: Fault | None) -> dict[str, Any]:
    etype, message = _ANTHROPIC_ERRORS.get(
        status, ("api_error" if status >= 500 else "invalid_request_error", f"Error {status} (fake).")
    )
    if fault is not None:
        etype = fault.error_type or etype
        message = fault.message or message
    error: dict[str, Any] = {"type": etype, "message": message}
    if fault is not None and fault.code:
        error["details"] = {"error_code": fault.code}
    return {"type": "error", "error": error, "request_id": "req_" + secrets.token_hex(12)}


class RemoteControl:
    """Steers a FakeLLMServer in another process through its /_control endpoints (stdlib only)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return json.loads(resp.read())

    def add_fault(self, fault: Fault, times: int = 1, api: str | None = None) -> None:
        self._call("POST", "/_control/faults", {"fault": fault.to_dict(), "times": times, "api": api})

    def reset(self) -> None:
        self._call("POST", "/_control/reset", {})

    def configure(self, **settings: Any) -> dict[str, Any]:
        return self._call("POST", "/_control/config", settings)["config"]

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_control/stats")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.llm_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reply-text", default=None)
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--latency", type=float, default=None)
    args = parser.parse_args(argv)

    server = FakeLLMServer(args.host, args.port)
    settings = {
        k: v
        for k, v in {"reply_text": args.reply_text, "chunk_size": args.chunk_size, "latency": args.latency}.items()
        if v is not None
    }
    if settings:
        server.configure(**settings)
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
    print(f"READY {server.base_url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
