"""What the AI gateway costs on top of a model call, next to the raw SDK and litellm.

Starts the fake LLM server (tests/fakes/llm_server.py) as a separate process on loopback and,
in one run and one event loop, sends chat completions through four paths:

- ``raw``      the official ``openai.AsyncOpenAI`` client (max_retries=0) on the SDK's aiohttp
               transport, as the gateway's providers use it: the floor;
- ``gateway``  ``apps.ai.gateway.generate`` with the cache off (temperature 0.7, every prompt
               different, so neither the cache nor coalescing kicks in);
- ``cache``    the gateway answering from its response cache (temperature 0, one fixed prompt);
- ``litellm``  ``litellm.acompletion`` against the same server (the usual alternative).

Sequential: raw and gateway alternate request by request (which goes first alternates too), so
each gateway request has a raw one measured at the same moment of the machine's noise; the
overhead is the median of the per-pair differences and p99(gateway) - p99(raw) over the pairs,
each with a 95% bootstrap interval (whole pairs resampled). cache and litellm run in blocks.
Concurrent: each path with 50 requests in flight, in interleaved blocks, in a shuffled order each
round, so noise hits every path alike; reported as the ratio of the p50s and of the throughputs.
Streams: the raw SDK's stream and ``gateway.stream`` in pairs against the same fake server, with an
answer of about 70 small chunks sent at once: time to first token, and time per later chunk (the
client's own work per chunk). It also checks that 100 identical concurrent requests reach the
provider once (coalescing), that the fake server saw exactly the requests measured, and that
importing the gateway opens no network connection. Usage:

    python bench/ai_gateway.py                 # 2,000 requests per path and mode, 400 stream pairs
    python bench/ai_gateway.py --quick         # 500 per path and mode, 100 stream pairs, under a minute
    python bench/ai_gateway.py --requests 1000 # any other count

``DATABASE_URL`` / ``REDIS_URL`` from the environment are kept (services mode); otherwise the
embedded default runs on a SQLite file in a temporary folder. With ``REDIS_URL`` and no
``REDIS_KEY_PREFIX``, a ``bench-<random>`` prefix is used and its keys are deleted at the end.
The litellm path needs the ``bench`` extra (``pip install -e '.[bench]'``); without it that path
is skipped and its targets are reported as not measured (n/a). Targets that are missed are printed
as MISSED and listed in the JSON's ``missed``, and the exit code is 1. The last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# bench/ is the script's own folder
from _support import delete_redis_keys, percentile, start_fake_server, stop_fake_server

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONCURRENCY = 50
WARMUP = 50
STREAM_TEXT = (
    "Thank you so much for the lovely message, the beach set was such a fun day and yes, "
    "there is more like it coming next week, so keep an eye on your inbox for a sneak peek!"
) * 2
STREAM_CHUNK_SIZE = 5  # characters per streamed chunk: about one token, as real providers send
BOOTSTRAP_RESAMPLES = 1000
COALESCE_REQUESTS = 100
COALESCE_LATENCY = 0.2
MODEL = "gpt-4o-mini"
SYSTEM = "You are a friendly assistant who writes short, warm replies for a creator's fans."
BASE_PROMPT = (
    "Write a short friendly reply to a fan who says they loved the latest photo set from the beach "
    "trip and asks whether there will be more content like this next week, and keep it light"
)  # 30 words
TARGETS = {
    "overhead_p50_ms": 0.5,  # sequential, paired (median of per-pair differences)
    "overhead_p99_ms": 1.5,  # sequential, paired (p99 of the gateway's minus p99 of the raw SDK's samples)
    "cache_hit_p50_ms": 0.5,
    "concurrent_overhead_ratio": 0.10,  # gateway p50 / raw p50 - 1, 50 in flight
    "throughput_ratio": 0.90,  # gateway requests/s / raw requests/s, 50 in flight
    "stream_ttft_overhead_p50_ms": 1.0,
    "stream_chunk_overhead_p50_ms": 0.2,
}
PATHS = ("raw", "gateway", "litellm", "cache", "raw_dict")
DEFAULT_REPLY_TEXT = "Hello from the fake model."  # tests/fakes/llm_server.py DEFAULT_REPLY
DEFAULT_CHUNK_SIZE = 5
MODES = ("sequential", "concurrent")

_IMPORT_CHECK = r"""
import json, socket, sys
calls = []

def recorder(name):
    def record(*args, **kwargs):
        calls.append([name, repr(args)[:200]])
        raise OSError(f"network access during import ({name}) blocked by bench/ai_gateway.py")
    return record

socket.socket.connect = recorder("socket.connect")
socket.socket.connect_ex = recorder("socket.connect_ex")
socket.create_connection = recorder("socket.create_connection")
socket.getaddrinfo = recorder("socket.getaddrinfo")
error = ""
try:
    import django
    django.setup()
    import apps.ai.gateway  # noqa: F401
except BaseException as exc:
    error = repr(exc)
finally:
    sys.stdout.write("IMPORT_CHECK " + json.dumps({"calls": calls, "error": error}) + "\n")
"""


# --- small helpers ---------------------------------------------------------------------------


def summary(latencies_s: list[float]) -> dict[str, float]:
    values = sorted(x * 1000 for x in latencies_s)
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "mean": sum(values) / len(values) if values else float("nan"),
    }


def bootstrap_interval(pairs: list[tuple[float, float]], statistic, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = 9) -> tuple[float, float]:  # fmt: skip
    """95% interval of ``statistic(pairs)`` over resamples of whole pairs (the pairing is kept)."""
    if len(pairs) < 2:
        return float("nan"), float("nan")
    rng = random.Random(seed)
    values = sorted(statistic(rng.choices(pairs, k=len(pairs))) for _ in range(resamples))
    return percentile(values, 2.5), percentile(values, 97.5)


def paired_overhead(pairs: list[tuple[float, float]]) -> dict[str, Any]:
    """Overhead (ms) from (raw s, gateway s) pairs: p50 of the differences, p99(gateway) - p99(raw)
    with a bootstrap interval each, and the p99 of the differences."""
    if not pairs:
        nan = float("nan")
        return {"p50": nan, "p99": nan, "diff_p99": nan, "p50_ci": (nan, nan), "p99_ci": (nan, nan)}

    def median_diff(sample: list[tuple[float, float]]) -> float:
        return percentile(sorted((g - r) * 1000 for r, g in sample), 50)

    def p99_diff(sample: list[tuple[float, float]]) -> float:
        return percentile(sorted(g * 1000 for _, g in sample), 99) - percentile(sorted(r * 1000 for r, _ in sample), 99)

    return {
        "p50": median_diff(pairs),
        "p99": p99_diff(pairs),
        "diff_p99": percentile(sorted((g - r) * 1000 for r, g in pairs), 99),
        "p50_ci": bootstrap_interval(pairs, median_diff),
        "p99_ci": bootstrap_interval(pairs, p99_diff),
    }


def stream_overhead(stream_pairs: list) -> dict[str, Any]:
    """From ((raw ttft s, raw per chunk s, chunks), (gateway …)) pairs: p50s in ms and paired differences."""
    nan = float("nan")
    if not stream_pairs:
        return dict.fromkeys(("raw_ttft_p50", "gateway_ttft_p50", "ttft_p50", "raw_chunk_p50", "gateway_chunk_p50",
                              "chunk_p50"), nan) | {"n": 0, "chunks": 0}  # fmt: skip

    def p50(values: list[float]) -> float:
        return percentile(sorted(v * 1000 for v in values), 50)

    return {
        "n": len(stream_pairs),
        "chunks": stream_pairs[0][0][2],
        "raw_ttft_p50": p50([r[0] for r, _ in stream_pairs]),
        "gateway_ttft_p50": p50([g[0] for _, g in stream_pairs]),
        "ttft_p50": p50([g[0] - r[0] for r, g in stream_pairs]),
        "raw_chunk_p50": p50([r[1] for r, _ in stream_pairs]),
        "gateway_chunk_p50": p50([g[1] for _, g in stream_pairs]),
        "chunk_p50": p50([g[1] - r[1] for r, g in stream_pairs]),
    }


def prompt(index: int) -> str:
    return f"{BASE_PROMPT} (#{index})"


def gateway_environment(fake_url: str, var_dir: str) -> dict[str, str]:
    huge = {"minute": 1_000_000_000, "hour": 1_000_000_000, "day": 1_000_000_000}
    env = {
        "DJANGO_SETTINGS_MODULE": "huntaze.settings",
        "DEBUG": "true",
        "HUNTAZE_VAR_DIR": var_dir,
        "OPENAI_API_KEY": "sk-bench-" + secrets.token_hex(8),
        "OPENAI_BASE_URL": fake_url + "/v1",
        "OPENAI_MODELS": MODEL,
        "ANTHROPIC_API_KEY": "",
        "AZURE_OPENAI_API_KEY": "",
        "OPENAI_COMPATIBLE_BASE_URL": "",
        "DEFAULT_AI_PROVIDER": "openai",
        "AI_ROUTING": "priority",
        "AI_BUDGET_CHECKS": "",
        "AI_LEDGER_FLUSH_SECONDS": "1",
        "AI_RATE_LIMITS": json.dumps({"openai": huge, "builtin": huge}),
        "LOG_LEVEL": "WARNING",
    }
    if os.environ.get("REDIS_URL") and not os.environ.get("REDIS_KEY_PREFIX"):
        env["REDIS_KEY_PREFIX"] = "bench-" + secrets.token_hex(4)
    return env


def check_import_network(env: dict[str, str]) -> tuple[int, list, str]:
    """Import the gateway in a fresh interpreter whose socket functions record (and refuse) calls."""
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_CHECK],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    for line in result.stdout.splitlines():
        if line.startswith("IMPORT_CHECK "):
            data = json.loads(line[len("IMPORT_CHECK ") :])
            return len(data["calls"]), data["calls"], data["error"]
    return -1, [], f"the import check printed nothing (exit {result.returncode}): {result.stderr[-1000:]}"


# --- the measured calls ----------------------------------------------------------------------


class Paths:
    """One coroutine function per path, each taking a request index."""

    def __init__(self, fake_url: str, api_key: str, agency_id: int, user_id: int, litellm: Any) -> None:
        import openai

        from apps.ai.gateway import generate, stream
        from apps.ai.types import AIRequest, Message

        self.generate = generate
        self.stream = stream
        self.AIRequest = AIRequest
        self.Message = Message
        self.litellm = litellm
        self.api_base = fake_url + "/v1"
        self.api_key = api_key
        self.agency_id = agency_id
        self.user_id = user_id
        self.raw_client = openai.AsyncOpenAI(
            api_key=api_key, base_url=self.api_base, max_retries=0, http_client=openai.DefaultAioHttpClient()
        )
        self.counters = dict.fromkeys(PATHS, 0)
        self.anomalies = dict.fromkeys((*PATHS, "raw_stream", "gateway_stream"), 0)
        self.cache_prompt = f"{BASE_PROMPT} (cached {secrets.token_hex(4)})"
        self.active = tuple(p for p in PATHS if p != "litellm" or litellm is not None)

    def next_index(self, path: str) -> int:
        self.counters[path] += 1
        return self.counters[path]

    def _messages(self, text: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]

    async def raw(self) -> None:
        text = prompt(self.next_index("raw"))
        response = await self.raw_client.chat.completions.create(
            model=MODEL, messages=self._messages(text), temperature=0.7, max_completion_tokens=64, timeout=30
        )
        if not response.choices or not response.choices[0].message.content:
            self.anomalies["raw"] += 1

    async def raw_dict(self) -> None:
        """The same SDK call as the gateway's provider makes: ``client.post`` with a body of plain
        JSON types and the answer as a dict (no TypedDict transform, no typed ChatCompletion). The
        gateway's own pipeline costs what it adds to this path."""
        text = prompt(self.next_index("raw_dict"))
        data = await self.raw_client.post(
            "/chat/completions", cast_to=object, options={"timeout": 30},
            body={"model": MODEL, "messages": self._messages(text), "temperature": 0.7, "max_completion_tokens": 64},
        )  # fmt: skip
        if not data.get("choices") or not data["choices"][0]["message"].get("content"):
            self.anomalies["raw_dict"] += 1

    def gateway_request(self, text: str, temperature: float, cache: bool | None = None):
        return self.AIRequest(
            feature="bench.chat",
            system=SYSTEM,
            messages=[self.Message("user", text)],
            agency_id=self.agency_id,
            user_id=self.user_id,
            temperature=temperature,
            max_tokens=64,
            cache=cache,
        )

    async def gateway(self) -> None:
        text = prompt(self.next_index("gateway"))
        response = await self.generate(self.gateway_request(text, 0.7))
        if (
            response.provider != "openai"
            or response.degraded
            or response.attempts != 1
            or response.cache_hit
            or response.coalesced
            or not response.text
        ):
            self.anomalies["gateway"] += 1

    async def cache(self) -> None:
        self.next_index("cache")
        response = await self.generate(self.gateway_request(self.cache_prompt, 0.0, cache=True))
        if not response.cache_hit or not response.text:
            self.anomalies["cache"] += 1

    async def warm_cache(self) -> None:
        await self.generate(self.gateway_request(self.cache_prompt, 0.0, cache=True))

    async def litellm_call(self) -> None:
        text = prompt(self.next_index("litellm"))
        response = await self.litellm.acompletion(
            model=f"openai/{MODEL}",
            messages=self._messages(text),
            api_base=self.api_base,
            api_key=self.api_key,
            num_retries=0,
            temperature=0.7,
            max_tokens=64,
            timeout=30,
        )
        if not response.choices or not response.choices[0].message.content:
            self.anomalies["litellm"] += 1

    async def raw_stream(self) -> tuple[float, float, int]:
        """One streamed answer through the raw SDK: (time to first token s, time per later chunk s, chunks)."""
        text = prompt(self.next_index("raw"))
        clock = time.perf_counter
        started = clock()
        first = last = None
        chunks = 0
        stream = await self.raw_client.chat.completions.create(
            model=MODEL, messages=self._messages(text), temperature=0.7, max_completion_tokens=64, timeout=30,
            stream=True, stream_options={"include_usage": True},
        )  # fmt: skip
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                last = clock()
                first = first or last
                chunks += 1
        if first is None or chunks < 2:
            self.anomalies["raw_stream"] += 1
            raise RuntimeError("the raw stream had fewer than two chunks")
        return first - started, (last - first) / (chunks - 1), chunks

    async def gateway_stream(self) -> tuple[float, float, int]:
        from apps.ai.types import StreamChunk, StreamComplete

        text = prompt(self.next_index("gateway"))
        clock = time.perf_counter
        started = clock()
        first = last = None
        chunks = 0
        complete = None
        async for event in self.stream(self.gateway_request(text, 0.7)):
            if isinstance(event, StreamChunk):
                last = clock()
                first = first or last
                chunks += 1
            elif isinstance(event, StreamComplete):
                complete = event.response
        if first is None or chunks < 2 or complete is None or complete.provider != "openai" or complete.degraded:
            self.anomalies["gateway_stream"] += 1
            raise RuntimeError("the gateway stream did not complete normally from the provider")
        return first - started, (last - first) / (chunks - 1), chunks

    def call(self, path: str):
        return {"raw": self.raw, "gateway": self.gateway, "cache": self.cache, "litellm": self.litellm_call,
                "raw_dict": self.raw_dict}[path]  # fmt: skip

    async def aclose(self) -> None:
        from apps.ai.registry import registry

        await self.raw_client.close()
        with contextlib.suppress(Exception):
            for provider in await registry.providers_for(self.agency_id):
                await provider.aclose()
        closer = getattr(self.litellm, "close_litellm_async_clients", None) if self.litellm else None
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


async def run_block(call, count: int, concurrency: int, errors: list[str]) -> tuple[list[float], float]:
    """Run ``count`` calls with ``concurrency`` in flight; per-call latencies (s) and wall time (s)."""
    latencies: list[float] = []
    clock = time.perf_counter

    async def one() -> None:
        started = clock()
        try:
            await call()
        except Exception as exc:  # reported, not measured
            errors.append(repr(exc)[:300])
            return
        latencies.append(clock() - started)

    began = clock()
    if concurrency <= 1:
        for _ in range(count):
            await one()
    else:
        semaphore = asyncio.Semaphore(concurrency)

        async def limited() -> None:
            async with semaphore:
                await one()

        await asyncio.gather(*(limited() for _ in range(count)))
    return latencies, clock() - began


async def paired(first, second, errors: list[str]) -> tuple[float, float] | None:
    """One call of each, back to back, in the given order: their latencies (s), or None on an error."""
    clock = time.perf_counter
    latencies = []
    for call in (first, second):
        started = clock()
        try:
            await call()
        except Exception as exc:  # reported, not measured
            errors.append(repr(exc)[:300])
            return None
        latencies.append(clock() - started)
    return latencies[0], latencies[1]


async def measure(paths: Paths, control, requests: int, rounds: int, streams: int) -> dict[str, Any]:
    errors: dict[str, list[str]] = {path: [] for path in (*PATHS, "stream")}
    results: dict[tuple[str, str], list[float]] = {(p, m): [] for p in PATHS for m in MODES}
    walls: dict[tuple[str, str], float] = {(p, m): 0.0 for p in PATHS for m in MODES}
    pairs: list[tuple[float, float]] = []  # sequential (raw, gateway), one request of each back to back
    stream_pairs: list[tuple[tuple[float, float, int], tuple[float, float, int]]] = []

    # Warm-up: connection pools, lazy imports, the cache entry, the per-loop provider objects.
    await paths.warm_cache()
    for path in paths.active:
        await run_block(paths.call(path), WARMUP, 1, errors[path])
        await run_block(paths.call(path), 2 * CONCURRENCY, CONCURRENCY, errors[path])
    warmup_errors = {path: len(errs) for path, errs in errors.items()}
    anomalies_before = dict(paths.anomalies)
    await asyncio.to_thread(control.reset)

    per_round = [requests // rounds + (1 if r < requests % rounds else 0) for r in range(rounds)]
    order_rng = random.Random(2026)
    for mode in MODES:
        concurrency = 1 if mode == "sequential" else CONCURRENCY
        for count in per_round:
            # A fresh path order each round, so no path always follows the same neighbour
            # (litellm leaves background work behind that would otherwise slow one path only).
            for path in order_rng.sample(paths.active, len(paths.active)):
                if mode == "sequential" and path == "gateway":
                    continue  # measured with raw, in pairs
                if mode == "sequential" and path == "raw":
                    # Paired: raw and gateway alternate request by request (which goes first
                    # alternates too), so both see the same moment of the machine's noise.
                    began = time.perf_counter()
                    for index in range(count):
                        order = (paths.raw, paths.gateway) if index % 2 else (paths.gateway, paths.raw)
                        pair = await paired(*order, errors["gateway"])
                        if pair is not None:
                            raw, gateway = (pair[0], pair[1]) if index % 2 else (pair[1], pair[0])
                            pairs.append((raw, gateway))
                            results[("raw", mode)].append(raw)
                            results[("gateway", mode)].append(gateway)
                    wall = time.perf_counter() - began
                    walls[("raw", mode)] += wall / 2
                    walls[("gateway", mode)] += wall / 2
                    continue
                latencies, wall = await run_block(paths.call(path), count, concurrency, errors[path])
                results[(path, mode)].extend(latencies)
                walls[(path, mode)] += wall

    # Streams: raw SDK stream and gateway.stream in pairs, against the same fake server, with an
    # answer of many small chunks sent at once (so the time between chunks is the client's work).
    stream_upstream = 0
    if streams:
        await asyncio.to_thread(control.configure, reply_text=STREAM_TEXT, chunk_size=STREAM_CHUNK_SIZE)
        for index in range(streams + 10):  # the first ten warm the stream path up
            outcome: dict[str, tuple[float, float, int]] = {}

            async def raw(outcome=outcome) -> None:
                outcome["raw"] = await paths.raw_stream()

            async def gateway(outcome=outcome) -> None:
                outcome["gateway"] = await paths.gateway_stream()

            order = (raw, gateway) if index % 2 else (gateway, raw)
            pair = await paired(*order, errors["stream"])
            stream_upstream += len(outcome)
            if pair is not None and index >= 10:
                stream_pairs.append((outcome["raw"], outcome["gateway"]))
        await asyncio.to_thread(control.configure, reply_text=DEFAULT_REPLY_TEXT, chunk_size=DEFAULT_CHUNK_SIZE)

    stats = await asyncio.to_thread(control.stats)
    upstream_expected = (
        sum(len(results[(p, m)]) for p in ("raw", "gateway", "litellm", "raw_dict") for m in MODES) + stream_upstream
    )
    return {
        "results": results,
        "walls": walls,
        "pairs": pairs,
        "stream_pairs": stream_pairs,
        "errors": errors,
        "warmup_errors": warmup_errors,
        "anomalies": {p: paths.anomalies[p] - anomalies_before[p] for p in paths.anomalies},
        "upstream_observed": stats.get("requests"),
        "upstream_expected": upstream_expected,
    }


async def coalescing(paths: Paths, control) -> dict[str, Any]:
    await asyncio.to_thread(control.reset)
    await asyncio.to_thread(control.configure, latency=COALESCE_LATENCY)
    text = f"{BASE_PROMPT} (coalesce {secrets.token_hex(4)})"
    try:
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(paths.generate(paths.gateway_request(text, 0.9)) for _ in range(COALESCE_REQUESTS)),
            return_exceptions=True,
        )
        elapsed = time.perf_counter() - started
        stats = await asyncio.to_thread(control.stats)
    finally:
        await asyncio.to_thread(control.configure, latency=0.0)
    ok = [r for r in responses if not isinstance(r, BaseException)]
    return {
        "upstream_calls": stats.get("requests"),
        "coalesced_responses": sum(1 for r in ok if r.coalesced),
        "failed": len(responses) - len(ok),
        "elapsed_s": elapsed,
    }


async def bench(args, fake_url: str, api_key: str, agency_id: int, user_id: int, litellm: Any) -> dict[str, Any]:
    from tests.fakes.llm_server import RemoteControl

    control = RemoteControl(fake_url)
    paths = Paths(fake_url, api_key, agency_id, user_id, litellm)
    try:
        measured = await measure(paths, control, args.requests, args.rounds, args.streams)
        measured["coalescing"] = await coalescing(paths, control)
    finally:
        await paths.aclose()
    return measured


# --- report ----------------------------------------------------------------------------------


def fmt(value: float) -> str:
    return f"{value:8.3f}"


def r3(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def report(measured: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    results = measured["results"]
    s = {(p, m): summary(results[(p, m)]) for p in PATHS for m in MODES}

    print()
    print(f"AI gateway benchmark — {extra['mode']} mode, {extra['requests']} requests per path and mode "
          f"({extra['rounds']} interleaved rounds), {CONCURRENCY} in flight for 'concurrent'")  # fmt: skip
    print()
    header = f"{'path':<9} {'mode':<11} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'req/s':>8}"
    print(header)
    print("-" * len(header))
    for mode in MODES:
        for path in PATHS:
            row = s[(path, mode)]
            if not row["n"]:
                print(f"{path:<9} {mode:<11} {'not measured':>22}")
                continue
            wall = measured["walls"][(path, mode)]
            rate = row["n"] / wall if wall else float("nan")
            print(f"{path:<9} {mode:<11} {row['n']:>5} {fmt(row['p50'])} {fmt(row['p90'])} {fmt(row['p99'])} "
                  f"{fmt(row['mean'])} {rate:8.0f}")  # fmt: skip
    print()
    print("Difference of percentiles over the raw SDK (independent samples; the paired figures below are judged):")
    overhead: dict[str, dict[str, float]] = {}
    for mode in MODES:
        raw = s[("raw", mode)]
        for path in ("gateway", "litellm"):
            row = s[(path, mode)]
            if not row["n"]:
                overhead[f"{path}_{mode}"] = dict.fromkeys(("p50", "p90", "p99", "mean"), float("nan"))
                continue
            overhead[f"{path}_{mode}"] = {q: row[q] - raw[q] for q in ("p50", "p90", "p99", "mean")}
            o = overhead[f"{path}_{mode}"]
            print(f"  {path:<8} {mode:<11} p50 {o['p50']:+.3f} ms   p90 {o['p90']:+.3f} ms   "
                  f"p99 {o['p99']:+.3f} ms   mean {o['mean']:+.3f} ms")  # fmt: skip

    # Sequential overhead from the pairs (raw and gateway back to back, request by request).
    pairs = measured["pairs"]
    gw = paired_overhead(pairs)
    ll = overhead["litellm_sequential"]
    print()
    print(f"Sequential overhead, paired ({len(pairs)} pairs, raw and gateway alternating request by request):")
    print(f"  p50 of per-pair differences {gw['p50']:+.3f} ms (95% bootstrap interval {gw['p50_ci'][0]:+.3f} .. "
          f"{gw['p50_ci'][1]:+.3f}); p99 gateway - p99 raw {gw['p99']:+.3f} ms (interval {gw['p99_ci'][0]:+.3f} .. "
          f"{gw['p99_ci'][1]:+.3f}); p99 of per-pair differences {gw['diff_p99']:+.3f} ms")  # fmt: skip

    raw_c, gw_c = s[("raw", "concurrent")], s[("gateway", "concurrent")]
    raw_rate = raw_c["n"] / measured["walls"][("raw", "concurrent")] if raw_c["n"] else float("nan")
    gw_rate = gw_c["n"] / measured["walls"][("gateway", "concurrent")] if gw_c["n"] else float("nan")
    concurrent_ratio = gw_c["p50"] / raw_c["p50"] - 1
    throughput_ratio = gw_rate / raw_rate
    print(f"Concurrent ({CONCURRENCY} in flight): gateway p50 / raw p50 - 1 = {concurrent_ratio:+.1%}, "
          f"throughput gateway / raw = {throughput_ratio:.1%} ({gw_rate:.0f} / {raw_rate:.0f} requests/s)")  # fmt: skip
    rd_c = s[("raw_dict", "concurrent")]
    rd_rate = rd_c["n"] / measured["walls"][("raw_dict", "concurrent")] if rd_c["n"] else float("nan")
    pipeline_ratio = gw_c["p50"] / rd_c["p50"] - 1 if rd_c["n"] else float("nan")
    pipeline_throughput = gw_rate / rd_rate
    print(f"  The gateway's own pipeline, against the same SDK call it makes (raw_dict): p50 {pipeline_ratio:+.1%}, "
          f"throughput {pipeline_throughput:.1%} ({gw_rate:.0f} / {rd_rate:.0f} requests/s)")  # fmt: skip

    st = stream_overhead(measured["stream_pairs"])
    if st["n"]:
        print(f"Streams ({st['n']} pairs, {st['chunks']} chunks each): time to first token raw p50 "
              f"{st['raw_ttft_p50']:.3f} ms, gateway {st['gateway_ttft_p50']:.3f} ms, paired difference p50 "
              f"{st['ttft_p50']:+.3f} ms; per chunk raw p50 {st['raw_chunk_p50'] * 1000:.1f} us, gateway "
              f"{st['gateway_chunk_p50'] * 1000:.1f} us, "
              f"paired difference p50 {st['chunk_p50'] * 1000:+.1f} us")  # fmt: skip

    cache = s[("cache", "sequential")]
    coal = measured["coalescing"]
    has_litellm = extra["litellm_version"] is not None
    has_streams = bool(st["n"])
    measured_errors = {p: len(e) - measured["warmup_errors"].get(p, 0) for p, e in measured["errors"].items()}
    upstream_ok = measured["upstream_observed"] == measured["upstream_expected"]
    checks = [
        ("gateway overhead p50 (sequential, paired) <= 0.5 ms", gw["p50"], gw["p50"] <= TARGETS["overhead_p50_ms"]),
        ("gateway overhead p99 (sequential, paired) <= 1.5 ms", gw["p99"], gw["p99"] <= TARGETS["overhead_p99_ms"]),
        ("cache hit p50 (sequential) <= 0.5 ms", cache["p50"], cache["p50"] <= TARGETS["cache_hit_p50_ms"]),
        ("gateway overhead p50 <= half of litellm's", gw["p50"], gw["p50"] <= ll["p50"] / 2 if has_litellm else None),
        ("gateway overhead p99 <= half of litellm's", gw["p99"], gw["p99"] <= ll["p99"] / 2 if has_litellm else None),
        ("import of the gateway: no network calls", extra["import_network_calls"], extra["import_network_calls"] == 0),
        ("100 identical requests -> 1 upstream call", coal["upstream_calls"], coal["upstream_calls"] == 1),
        (f"concurrent p50 within 10% of raw ({CONCURRENCY} in flight)", concurrent_ratio,
         concurrent_ratio <= TARGETS["concurrent_overhead_ratio"]),
        ("concurrent throughput >= 90% of raw", throughput_ratio, throughput_ratio >= TARGETS["throughput_ratio"]),
        ("stream time to first token <= raw + 1 ms (p50)", st["ttft_p50"],
         st["ttft_p50"] <= TARGETS["stream_ttft_overhead_p50_ms"] if has_streams else None),
        ("stream per chunk <= raw + 0.2 ms (p50)", st["chunk_p50"],
         st["chunk_p50"] <= TARGETS["stream_chunk_overhead_p50_ms"] if has_streams else None),
        ("no errors, no unexpected responses", sum(measured_errors.values()) + sum(measured["anomalies"].values()),
         not sum(measured_errors.values()) and not sum(measured["anomalies"].values())),
        ("upstream requests = requests measured", measured["upstream_observed"], upstream_ok),
    ]  # fmt: skip
    print()
    print("Targets:")
    for label, value, passed in checks:
        if isinstance(value, float) and "ratio" not in label and ("%" in label or "within" in label):
            shown = f"{value:+.1%}" if "within" in label else f"{value:.1%}"
        elif isinstance(value, float):
            shown = f"{value:.3f} ms"
        else:
            shown = str(value)
        verdict = "n/a   " if passed is None else "pass  " if passed else "MISSED"
        print(f"  {verdict}  {label:<54} {shown}")
    if has_litellm:
        print(f"  (half of litellm's overhead: p50 {ll['p50'] / 2:.3f} ms, p99 {ll['p99'] / 2:.3f} ms)")
    else:
        print("  (litellm is not installed, so its comparison was not measured: pip install -e '.[bench]')")
    print()
    errors = measured_errors
    print(f"Errors during measurement: {errors}; during warm-up: {measured['warmup_errors']}")
    for path, errs in measured["errors"].items():
        for message in sorted(set(errs))[:3]:
            print(f"  {path}: {message}")
    print(f"Unexpected responses (degraded, retried, coalesced, cache miss, empty): {measured['anomalies']}")
    print(f"Upstream requests seen by the fake server: {measured['upstream_observed']} "
          f"(expected {measured['upstream_expected']})")  # fmt: skip
    print(f"Coalescing: {COALESCE_REQUESTS} identical concurrent requests at {COALESCE_LATENCY} s upstream latency "
          f"-> {coal['upstream_calls']} upstream call(s), {coal['coalesced_responses']} marked coalesced, "
          f"{coal['failed']} failed, {coal['elapsed_s'] * 1000:.0f} ms")  # fmt: skip
    if extra["import_network_detail"]:
        print(f"Import network calls: {extra['import_network_detail'][:5]}")
    if extra["import_error"]:
        print(f"Import check error: {extra['import_error']}")
    if extra.get("redis_keys_deleted") is not None:
        print(f"Redis keys deleted under prefix {extra['redis_prefix']!r}: {extra['redis_keys_deleted']}")

    sc = {f"{p}_{m}": s[(p, m)] for p in PATHS for m in MODES}
    out: dict[str, Any] = {
        "mode": extra["mode"],
        "requests": extra["requests"],
        "raw_p50_ms": r3(sc["raw_sequential"]["p50"]),
        "raw_p99_ms": r3(sc["raw_sequential"]["p99"]),
        "gateway_p50_ms": r3(sc["gateway_sequential"]["p50"]),
        "gateway_p99_ms": r3(sc["gateway_sequential"]["p99"]),
        "overhead_p50_ms": r3(gw["p50"]),
        "overhead_p99_ms": r3(gw["p99"]),
        "overhead_p50_ci_ms": [r3(v) for v in gw["p50_ci"]],
        "overhead_p99_ci_ms": [r3(v) for v in gw["p99_ci"]],
        "paired_diff_p99_ms": r3(gw["diff_p99"]),
        "pairs": len(pairs),
        "cache_hit_p50_ms": r3(cache["p50"]),
        "cache_hit_p99_ms": r3(cache["p99"]),
        "litellm_p50_ms": r3(sc["litellm_sequential"]["p50"]),
        "litellm_p99_ms": r3(sc["litellm_sequential"]["p99"]),
        "litellm_overhead_p50_ms": r3(ll["p50"]),
        "litellm_overhead_p99_ms": r3(ll["p99"]),
        "concurrent_raw_p50_ms": r3(sc["raw_concurrent"]["p50"]),
        "concurrent_raw_p99_ms": r3(sc["raw_concurrent"]["p99"]),
        "concurrent_gateway_p50_ms": r3(sc["gateway_concurrent"]["p50"]),
        "concurrent_gateway_p99_ms": r3(sc["gateway_concurrent"]["p99"]),
        "concurrent_overhead_p50_ms": r3(overhead["gateway_concurrent"]["p50"]),
        "concurrent_overhead_p99_ms": r3(overhead["gateway_concurrent"]["p99"]),
        "concurrent_cache_hit_p50_ms": r3(sc["cache_concurrent"]["p50"]),
        "concurrency": CONCURRENCY,
        "concurrent_raw_rps": round(raw_rate, 1),
        "concurrent_gateway_rps": round(gw_rate, 1),
        "concurrent_overhead_ratio": r3(concurrent_ratio),
        "throughput_ratio": r3(throughput_ratio),
        "concurrent_raw_dict_p50_ms": r3(sc["raw_dict_concurrent"]["p50"]),
        "pipeline_overhead_ratio": r3(pipeline_ratio),
        "pipeline_throughput_ratio": r3(pipeline_throughput),
        "pipeline_overhead_p50_ms": r3(sc["gateway_sequential"]["p50"] - sc["raw_dict_sequential"]["p50"]),
        "stream_pairs": st["n"],
        "stream_chunks": st["chunks"],
        "stream_raw_ttft_p50_ms": r3(st["raw_ttft_p50"]),
        "stream_gateway_ttft_p50_ms": r3(st["gateway_ttft_p50"]),
        "stream_ttft_overhead_p50_ms": r3(st["ttft_p50"]),
        "stream_raw_chunk_p50_ms": r3(st["raw_chunk_p50"]),
        "stream_gateway_chunk_p50_ms": r3(st["gateway_chunk_p50"]),
        "stream_chunk_overhead_p50_ms": r3(st["chunk_p50"]),
        "concurrent_litellm_overhead_p50_ms": r3(overhead["litellm_concurrent"]["p50"]),
        "concurrent_litellm_overhead_p99_ms": r3(overhead["litellm_concurrent"]["p99"]),
        "coalesced_upstream_calls": coal["upstream_calls"],
        "import_network_calls": extra["import_network_calls"],
        "errors": sum(errors.values()),
        "errors_by_path": errors,
        "anomalies": measured["anomalies"],
        "upstream_requests": measured["upstream_observed"],
        "upstream_requests_expected": measured["upstream_expected"],
        "targets": {
            "overhead_p50_le_0_5ms": checks[0][2],
            "overhead_p99_le_1_5ms": checks[1][2],
            "cache_hit_p50_le_0_5ms": checks[2][2],
            "overhead_p50_le_half_litellm": checks[3][2],
            "overhead_p99_le_half_litellm": checks[4][2],
            "import_no_network": checks[5][2],
            "coalesced_to_one_call": checks[6][2],
            "concurrent_p50_within_10pct": checks[7][2],
            "throughput_ge_90pct": checks[8][2],
            "stream_ttft_le_1ms": checks[9][2],
            "stream_chunk_le_0_2ms": checks[10][2],
            "no_errors": checks[11][2],
            "upstream_count_matches": checks[12][2],
        },
        "missed": [label for label, _, passed in checks if passed is False],
        "python": sys.version.split()[0],
        "litellm": extra["litellm_version"],
        "elapsed_s": round(time.monotonic() - extra["began"], 1),
    }
    return out


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 requests per path and mode, 10 rounds (< 60 s)")
    parser.add_argument("--requests", type=int, default=None, help="requests per path and mode (default 2000)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 20, quick 10)")
    parser.add_argument("--streams", type=int, default=None, help="streamed pairs (default 400, quick 100; 0: none)")
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 500 if args.quick else 2000
    if args.rounds is None:
        args.rounds = 10 if args.quick else 20
    if args.streams is None:
        args.streams = 100 if args.quick else 400
    if args.requests < 1 or args.rounds < 1 or args.rounds > args.requests:
        parser.error("--requests and --rounds must be positive, and rounds <= requests")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    var_dir = tempfile.mkdtemp(prefix="huntaze-bench-ai-")
    fake, fake_url, fake_log = start_fake_server()
    try:
        env = gateway_environment(fake_url, var_dir)
        os.environ.update(env)
        redis_url = os.environ.get("REDIS_URL", "")
        redis_prefix = os.environ.get("REDIS_KEY_PREFIX", "")
        mode = "services" if (redis_url or os.environ.get("DATABASE_URL")) else "embedded"

        # In a fresh interpreter, before this one imports anything of Django's.
        import_calls, import_detail, import_error = check_import_network(env)

        import django

        django.setup()
        from django.core.management import call_command

        from apps.accounts.models import Agency, User

        call_command("migrate", verbosity=0)
        tag = secrets.token_hex(4)
        agency = Agency.objects.create(name=f"Bench agency {tag}")
        user = User.objects.create_user(email=f"bench-{tag}@bench.huntaze.local", password=None)

        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # keep litellm's import off the network
        os.environ.setdefault("LITELLM_LOG", "ERROR")
        try:
            import litellm
        except ImportError:
            litellm = None
            litellm_version = None
            print("litellm is not installed: its path is skipped (pip install -e '.[bench]')", flush=True)
        else:
            litellm.suppress_debug_info = True
            if hasattr(litellm, "telemetry"):
                litellm.telemetry = False
            try:
                from importlib.metadata import version

                litellm_version = version("litellm")
            except Exception:
                litellm_version = "unknown"

        measured = asyncio.run(bench(args, fake_url, env["OPENAI_API_KEY"], agency.id, user.id, litellm))

        from apps.ai.ledger import ledger

        ledger.shutdown()
        extra = {
            "mode": mode,
            "requests": args.requests,
            "rounds": args.rounds,
            "import_network_calls": import_calls,
            "import_network_detail": import_detail,
            "import_error": import_error,
            "litellm_version": litellm_version,
            "began": began,
        }
        if redis_url and redis_prefix.startswith("bench-"):
            extra["redis_prefix"] = redis_prefix
            extra["redis_keys_deleted"] = delete_redis_keys(redis_url, redis_prefix)
        if os.environ.get("DATABASE_URL"):  # a shared database: remove what the run added
            from apps.ai.models import AIRequestLog

            AIRequestLog.objects.filter(agency=agency).delete()
            user.delete()
            agency.delete()
        out = report(measured, extra)
    finally:
        stop_fake_server(fake)
        fake_log.close()
        from django.apps import apps as django_apps

        if django_apps.ready:
            from apps.core import metrics

            metrics.flush()  # now, into the run's database: at exit that database is gone
        shutil.rmtree(var_dir, ignore_errors=True)
    print(json.dumps(out))
    return 1 if out["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
