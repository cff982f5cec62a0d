"""How many turns of a busy event loop one AI rate-limit check waits (``shared_state().hit_limits``,
the check every generation's start makes before its upstream request).

In a burst of starts, a daphne's event loop runs every ready callback of every socket in each turn,
so a turn lasts milliseconds and each turn a start waits adds that much to its set-up (issue #9).
Turns are counted, not timed, so the figure does not depend on how loaded the machine is: a
callback that re-schedules itself busies the loop for ``--busy-ms`` each turn and counts the turns;
the check is made ``--calls`` times, one after another. Redis (``REDIS_URL``, the key prefix
``hz-bench-turns``, removed afterwards) or, without it, the embedded file backend.

Exits 1 when the median is above the design's count: 5 turns on Redis (the turn of the check,
which makes the batch's task; the task's first step, which sends the script; the reply read off
the socket; the task resumed with it; the waiter woken), 2 on the file backend (one transaction in
a callback, then the waiter). It was 6 on Redis while a callback made the batch's task. Usage:

    python bench/rate_limit_turns.py [--quick] [--calls N] [--busy-ms MS]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DESIGN_TURNS = {"redis": 5, "file": 2}


async def count_turns(state, calls: int, busy_s: float) -> list[int]:
    from apps.core.shared import LimitCheck

    loop = asyncio.get_running_loop()
    turns = 0
    running = True

    def busy() -> None:
        nonlocal turns
        turns += 1
        until = time.perf_counter() + busy_s
        while time.perf_counter() < until:
            pass
        if running:
            loop.call_soon(busy)

    checks = [LimitCheck(f"bench-turns-{os.getpid()}", 10**9, 3600)]
    await state.hit_limits(checks)  # the connection, the script loaded
    loop.call_soon(busy)
    counts = []
    for _ in range(calls):
        before = turns
        await state.hit_limits(checks)
        counts.append(turns - before)
    running = False
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 checks")
    parser.add_argument("--calls", type=int, help="checks (default 500)")
    parser.add_argument("--busy-ms", type=float, default=3.0,
                        help="the loop's work per turn (default 3 ms: Redis answers within a turn)")  # fmt: skip
    args = parser.parse_args(argv)
    calls = args.calls or (100 if args.quick else 500)
    if calls < 10 or not 0.1 <= args.busy_ms <= 50:
        parser.error("--calls must be at least 10 and --busy-ms 0.1..50")

    from _support import report  # bench/ is the script's own folder

    from apps.core.shared import LocalSharedState, RedisSharedState

    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        from _support import delete_redis_keys  # bench/ is the script's own folder

        backend, state = "redis", RedisSharedState(redis_url, "hz-bench-turns")
    else:
        backend, state = "file", LocalSharedState(Path(tempfile.mkdtemp(prefix="hz-bench-turns-")) / "shared.sqlite3")
    try:
        counts = asyncio.run(count_turns(state, calls, args.busy_ms / 1000))
    finally:
        if backend == "redis":
            delete_redis_keys(redis_url, "hz-bench-turns")
    median = statistics.median(counts)
    result = {"backend": backend, "calls": calls, "busy_ms": args.busy_ms, "turns_median": median,
              "turns_mean": round(statistics.mean(counts), 2), "turns_max": max(counts)}  # fmt: skip
    print(f"{backend}: {calls} checks on a loop busy {args.busy_ms} ms a turn: median {median} turns, "
          f"mean {result['turns_mean']}, max {result['turns_max']}")  # fmt: skip
    missed = [f"turns_median <= {DESIGN_TURNS[backend]}"] if median > DESIGN_TURNS[backend] else []
    return report(result, missed)


if __name__ == "__main__":
    sys.exit(main())
