"""What a streamed studio generation's end costs the CPU, step by step, and the moderation call's
answer read as a dict against the typed response it was read as before, in one process, paired.

A generation's end is one thread hop (``apps/studio/services.py`` ``_complete_stream``): the
answer parsed and fitted to its shape, the safety policy, the moderation endpoint (through the
official openai SDK, to the loopback fake ``tests/fakes/llm_server.py``), the row saved, and the
result fragment rendered. It runs once per generation beside the streams of every other member,
so its CPU is part of what a hundred streams on two cores queue behind (issue #9).

Measured:

- ``steps``: the CPU of each step of the hop (``time.thread_time`` of the calling thread, so
  other processes on the machine do not count), median over ``--calls`` generations, each on a
  freshly prepared row;
- ``moderation``: ``moderate()`` as it is (``client.post`` read as a dict) against the SDK's typed
  ``moderations.create`` and ``model_dump`` as it was before, alternating ``--rounds`` rounds of
  ``--calls`` calls, the order swapped every round; the ratio is the median of the paired ratios.

Exits 1 when the dict read does not cost less CPU than the typed one. SQLite under a temporary
var/ (or ``DATABASE_URL``'s server, database ``hz_bench_completion``). Usage:

    python bench/completion.py [--quick] [--calls N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ANSWER = json.dumps({"variations": [
    {"text": "Morning sunshine from the beach! Who wants to see the rest of today's set?"},
    {"text": "Just finished a sunrise run and thought of you. How's your week going?"},
    {"text": "New set is almost ready, and you get the first look. Want a little preview?"},
]})  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 calls, 5 rounds")
    parser.add_argument("--calls", type=int, help="calls per measurement (default 300)")
    parser.add_argument("--rounds", type=int, help="paired rounds (default 7)")
    args = parser.parse_args(argv)
    calls = args.calls or (100 if args.quick else 300)
    rounds = args.rounds or (5 if args.quick else 7)
    if calls < 10 or not 1 <= rounds <= 100:
        parser.error("--calls must be at least 10 and --rounds 1..100")

    from _support import start_fake_server, stop_fake_server, temporary_django  # bench/ is the script's own folder

    fake, base_url, fake_log = start_fake_server()
    try:
        mode = temporary_django(
            "hz-bench-completion-",
            "hz_bench_completion",
            {"OPENAI_API_KEY": "sk-bench-completion", "OPENAI_BASE_URL": f"{base_url}/v1"},
        )
        return measure(mode, calls, rounds)
    finally:
        stop_fake_server(fake)
        fake_log.close()


def measure(mode: str, calls: int, rounds: int) -> int:
    from _support import delete_studio_member, studio_member

    from apps.accounts.models import Role

    agency, user, membership, creator = studio_member("completion", Role.OWNER)
    try:
        return _measure(mode, calls, rounds, membership, creator)
    finally:
        if mode == "services":  # the rows this run made, on a server other runs share
            delete_studio_member(agency, user)


def _measure(mode: str, calls: int, rounds: int, membership: Any, creator: Any) -> int:
    from _support import paired_cpu, report
    from django.conf import settings

    from apps.ai import moderation
    from apps.ai.types import AIResponse, Usage
    from apps.studio import services
    from apps.studio.consumers import _render_result

    agency_id = creator.agency_id
    data = {"type": "message", "platform": "onlyfans", "tone": "friendly", "message_type": "check_in"}
    response = AIResponse(text=ANSWER, provider="openai", model="gpt-4o-mini", cost_usd=Decimal("0.0001"),
                          usage=Usage(input_tokens=400, output_tokens=60), latency_ms=900.0)  # fmt: skip

    def end_of_generation() -> dict[str, float]:
        """_complete_stream's steps, each timed (the same calls in the same order)."""
        prepared = services.studio_prepare(membership=membership, creator=creator, data=data, save=True)
        clock = [time.thread_time()]
        prepared.generation.text = response.text
        result, problem = services._complete_from_answer(prepared, response.text)
        assert result is not None, problem
        clock.append(time.thread_time())
        result, violations, _ = services._apply_safety(prepared, result)
        clock.append(time.thread_time())
        result, flagged = services._moderate(prepared, result)
        clock.append(time.thread_time())
        generation = services._finish(prepared, response, result, violations + flagged)
        clock.append(time.thread_time())
        _render_result(generation)
        clock.append(time.thread_time())
        names = ("parse", "safety", "moderation", "save", "render")
        return {name: 1000 * (b - a) for name, a, b in zip(names, clock, clock[1:], strict=False)}

    def moderate_typed(*, agency_id: int, texts: list[str]) -> list[frozenset[str]]:  # moderate() before the dict
        config = moderation.moderation_config(agency_id=agency_id)
        timeout = min(float(settings.AI_TIMEOUT_SECONDS), moderation.MAX_TIMEOUT_SECONDS)
        client = moderation._client(config, timeout)
        answer = client.moderations.create(model=moderation.MODEL, input=list(texts), timeout=timeout)
        return [
            frozenset(name for name, on in result.categories.model_dump(by_alias=True).items() if on)
            for result in answer.results
        ]

    texts = [variation["text"] for variation in json.loads(ANSWER)["variations"]]
    assert moderate_typed(agency_id=agency_id, texts=texts) == moderation.moderate(agency_id=agency_id, texts=texts)

    for _ in range(10):  # warm-up: imports, templates, the connections
        end_of_generation()
    steps: dict[str, list[float]] = {}
    for _ in range(calls):
        for name, value in end_of_generation().items():
            steps.setdefault(name, []).append(value)

    def call(function: Callable) -> Callable[[], object]:
        return lambda: function(agency_id=agency_id, texts=texts)

    [(typed, read, ratio)] = paired_cpu(
        {"moderation": (call(moderate_typed), call(moderation.moderate))}, calls, rounds
    ).values()

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    database = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
    print(f"{calls:,} generations, then {calls:,} calls x {rounds} paired rounds; {mode} ({database}), "
          f"Python {platform.python_version()}, {os.cpu_count()} CPU(s)")  # fmt: skip
    result: dict[str, object] = {"calls": calls, "rounds": rounds, "mode": mode}
    print(f"{'step of the end of a generation':<34}{'CPU ms (median)':>16}")
    for name, values in steps.items():
        print(f"{name:<34}{median(values):>16}")
        result[f"{name}_cpu_ms"] = median(values)
    total = median([sum(values) for values in zip(*steps.values(), strict=True)])
    print(f"{'all':<34}{total:>16}")
    result["end_cpu_ms"] = total
    print(f"moderation call: typed response {typed} ms, dict {read} ms, paired ratio {ratio}")
    result |= {"moderation_typed_cpu_ms": typed, "moderation_dict_cpu_ms": read, "moderation_cpu_ratio": ratio}
    missed = [] if ratio < 1 else ["moderation_cpu_ratio < 1"]
    return report(result, missed)


if __name__ == "__main__":
    sys.exit(main())
