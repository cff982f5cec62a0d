"""The campaigns send pipeline: starting a campaign to 100,000 fans, one account pump's
throughput, and the rate limiter (decisions per second, and what 8 processes hammering one
platform account's key are admitted): the campaigns issue's Speed section.

What it does, on the limiter the product uses (``apps.core.shared``: a Lua script on Redis when
``REDIS_URL`` is set, else the embedded default's SQLite file in a temporary directory), in a key
namespace of its own that it deletes afterwards:

- ``limiter_decisions_per_s``: one process, asyncio, 128 callers at once, each on a key of its
  own under a limit it never reaches (every decision admits and writes), for ``DECISIONS``
  decisions; ``limiter_sync_decisions_per_s``: the same one at a time through the synchronous
  API (what a Celery worker calls), for information;
- ``limit_rate`` / ``achieved_rate`` / ``max_window_excess`` / ``over_admitted``: 8 processes,
  started together, each asking for a send on ONE account layer (``LIMIT`` per second, burst
  ``BURST``) as fast as it may for ``--seconds`` (30; ``--quick`` 5), sleeping the wait it is
  told. ``over_admitted`` is how far the admitted total goes above ``LIMIT * seconds + BURST``;
  ``achieved_rate`` is the admitted rate after the first second (the burst); ``max_window_excess``
  is how far the busiest 1-second window (each admission timed halfway through its call) goes
  above ``LIMIT * 1 + BURST``.

Targets: at least 10,000 decisions per second, ``achieved_rate`` within 5% of ``limit_rate``,
``over_admitted`` 0 and ``max_window_excess`` 0. The pipeline (``pipeline()``):
``materialize_100k_s`` is starting a campaign to 100,000 fans (audience query with the
"messaged in the last 24 hours" exclusion, per-fan text, bulk write of the deliveries; target
10 s); ``throughput_msgs_per_s`` is one account pump
sending them to the simulated platform with no rate limit (target 1,000/s). Prints a table,
then one JSON line; exits 1 when a target is missed. Usage:

    python bench/campaigns.py [--quick]                              # embedded (SQLite file)
    REDIS_URL=redis://127.0.0.1:6379/0 python bench/campaigns.py     # on Redis
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DECISIONS = 50_000
QUICK_DECISIONS = 20_000
SYNC_DECISIONS = 5_000
CALLERS = 128
PROCESSES = 8
LIMIT = 100  # admissions per second on the one account key
BURST = 10
MIN_DECISIONS_PER_S = 10_000
RATE_TOLERANCE = 0.05
MATERIALIZE = 100_000
MAX_MATERIALIZE_S = 10.0
PUMP_SECONDS = 15.0
QUICK_PUMP_SECONDS = 5.0
MIN_THROUGHPUT = 1_000
PG_DATABASE = "hz_campaigns_bench"
UNLIMITED = {layer: {"limit": 10**6, "seconds": 1} for layer in ("account", "creator", "agency", "global")}


def make_state(namespace: str, directory: str):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huntaze.settings")
    from apps.core.shared import LocalSharedState, RedisSharedState

    url = os.environ.get("REDIS_URL")
    if url:
        return RedisSharedState(url, namespace)
    return LocalSharedState(Path(directory) / "shared-state.sqlite3")


def decisions_per_second(state, total: int) -> float:
    from apps.core.shared import LimitCheck

    async def run() -> float:
        layers = [[LimitCheck(f"bench:dec:{i}", 10**9, 1)] for i in range(CALLERS)]
        per_caller = total // CALLERS

        async def caller(checks) -> None:
            for _ in range(per_caller):
                if await state.hit_limits(checks) is not None:
                    raise RuntimeError("a decision under an unreachable limit was refused")

        await state.hit_limits([LimitCheck("bench:warm", 10**9, 1)])  # connect, load the script
        began = time.perf_counter()
        await asyncio.gather(*(caller(checks) for checks in layers))
        return per_caller * CALLERS / (time.perf_counter() - began)

    return asyncio.run(run())


def sync_decisions_per_second(state, total: int) -> float:
    from apps.core.shared import LimitCheck

    checks = [LimitCheck("bench:sync", 10**9, 1)]
    state.hit_limits_sync(checks)
    began = time.perf_counter()
    for _ in range(total):
        state.hit_limits_sync(checks)
    return total / (time.perf_counter() - began)


def hammer(namespace: str, directory: str, start: float, seconds: float, queue) -> None:
    """One of the 8 processes: ask for sends on the one account key until the deadline."""
    from apps.core.shared import LimitCheck

    state = make_state(namespace, directory)
    layer = [LimitCheck("bench:account", LIMIT, 1, BURST)]
    admitted: list[float] = []
    refused = 0
    time.sleep(max(0.0, start - time.time()))
    deadline = start + seconds
    while True:
        before = time.time()
        if before >= deadline:
            break
        wait = state.hit_limits_sync(layer)
        after = time.time()
        if wait is None:
            admitted.append((before + after) / 2)
        else:
            refused += 1
            time.sleep(min(wait, max(0.0, deadline - after)))
    queue.put((admitted, refused))


def contention(namespace: str, directory: str, seconds: float) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start = time.time() + 3.0  # every process is up and connected before it
    workers = [
        context.Process(target=hammer, args=(namespace, directory, start, seconds, queue)) for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    times = sorted(t for admitted, _ in results for t in admitted)
    refused = sum(r for _, r in results)
    allowed_total = LIMIT * seconds + BURST
    sustained = [t for t in times if t >= start + 1.0]
    busiest = max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)
    return {
        "admitted": len(times),
        "refused": refused,
        "allowed_total": allowed_total,
        "over_admitted": max(0, len(times) - allowed_total),
        "achieved_rate": round(len(sustained) / (seconds - 1.0), 2),
        "busiest_window": busiest,
        "max_window_excess": max(0, busiest - (LIMIT + BURST)),
    }


def pipeline(quick: bool) -> dict:
    """Start a campaign to MATERIALIZE fans (a segment of all of one creator's fans, a text with a
    variable filled per fan): the audience query, the rendering and the bulk write of one delivery
    per fan, as ``campaign_start`` does at the send time. Then send them with one process's account
    pump against the simulated platform with no rate limit, for a while, and put one batch of the
    sent messages into the fans' conversations as the campaigns tick does."""
    from _support import configure_django

    mode = configure_django(
        ROOT / "var" / "bench-campaigns",
        PG_DATABASE,
        {
            "CELERY_BROKER_URL": "memory://",  # the pump task the enqueue publishes goes nowhere
            "DELIVERY_RATE_LIMITS": json.dumps(UNLIMITED),
        },
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.accounts.models import Agency, Creator
    from apps.campaigns import services as campaigns
    from apps.campaigns.models import Campaign, CampaignStatus
    from apps.delivery.models import Delivery, SimulatedOutboundMessage
    from apps.delivery.services import delivery_pump
    from apps.messaging.models import Fan, Message, Segment

    call_command("migrate", verbosity=0)
    agency, _ = Agency.objects.get_or_create(name="Campaigns bench")
    creator, _ = Creator.objects.get_or_create(agency=agency, display_name="Bench creator")
    have = Fan.objects.filter(creator=creator).count()
    if have < MATERIALIZE:  # set-up, kept between runs; not timed
        Fan.objects.bulk_create(
            [
                Fan(
                    agency=agency,
                    creator=creator,
                    platform="onlyfans",
                    platform_fan_id=f"fan-{i}",
                    username=f"fan{i}",
                    display_name=f"Fan{i} Bench",
                )
                for i in range(have, MATERIALIZE)
            ],
            batch_size=5000,
        )
    segment, _ = Segment.objects.get_or_create(agency=agency, creator=creator, name="Everyone", filters={})
    Message.objects.filter(agency=agency).delete()
    SimulatedOutboundMessage.objects.filter(agency=agency).delete()
    Delivery.objects.filter(agency=agency).delete()
    Campaign.objects.filter(agency=agency).delete()
    with connection.cursor() as cursor:  # fresh planner statistics, as autovacuum keeps them in production
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE messaging_fan")
            cursor.execute("VACUUM ANALYZE delivery_delivery")
        else:
            cursor.execute("ANALYZE")
    campaign = Campaign.objects.create(
        agency=agency, creator=creator, name="Bench", segment=segment, status=CampaignStatus.SCHEDULED,
        text="Hey {fan.first_name|babe}, my new set is up!", exclude_messaged_within_hours=24,
    )  # fmt: skip
    began = time.perf_counter()
    status = campaigns.campaign_start(campaign_id=campaign.pk)
    materialize_s = time.perf_counter() - began
    written = Delivery.objects.filter(agency=agency).count()
    seconds = QUICK_PUMP_SECONDS if quick else PUMP_SECONDS
    began = time.perf_counter()
    outcomes = delivery_pump(creator_id=creator.pk, platform="onlyfans", seconds=seconds)
    elapsed = time.perf_counter() - began
    sent = outcomes.get("sent", 0)
    duplicates = SimulatedOutboundMessage.objects.filter(agency=agency).count() - sent
    campaign.refresh_from_db()
    began = time.perf_counter()
    recorded = campaigns._record_messages(campaign)
    record_s = time.perf_counter() - began
    Message.objects.filter(agency=agency).delete()
    Delivery.objects.filter(agency=agency).delete()
    SimulatedOutboundMessage.objects.filter(agency=agency).delete()
    Campaign.objects.filter(agency=agency).delete()
    return {
        "mode": mode,
        "database": connection.vendor,
        "materialize_s": materialize_s,
        "started": status,
        "written": written,
        "sent": sent,
        "pump_s": elapsed,
        "throughput": sent / elapsed if elapsed else 0.0,
        "outcomes": outcomes,
        "duplicates": duplicates,
        "recorded": recorded,
        "record_per_s": recorded / record_s if record_s else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s of contention, fewer decisions")
    parser.add_argument("--seconds", type=float, default=None, help="contention length (default 30; --quick 5)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    began = time.monotonic()
    namespace = f"bench-campaigns-{uuid.uuid4().hex[:8]}"
    mode = "services" if os.environ.get("REDIS_URL") else "embedded"
    with tempfile.TemporaryDirectory(prefix="bench-campaigns-") as directory:
        state = make_state(namespace, directory)
        try:
            rate = decisions_per_second(state, QUICK_DECISIONS if args.quick else DECISIONS)
            sync_rate = sync_decisions_per_second(state, SYNC_DECISIONS)
            shared = contention(namespace, directory, seconds)
            pipe = pipeline(args.quick)
        finally:
            if os.environ.get("REDIS_URL"):
                from _support import delete_redis_keys

                delete_redis_keys(os.environ["REDIS_URL"], namespace)
    backend = "Redis (Lua script)" if mode == "services" else "SQLite file (embedded default)"
    print(f"bench/campaigns.py: limiter on {backend}; {PROCESSES} processes x {seconds:g} s on one key")
    print(f"  decisions/s, {CALLERS} async callers   {rate:12,.0f}   (target >= {MIN_DECISIONS_PER_S:,})")
    print(f"  decisions/s, synchronous, one caller {sync_rate:12,.0f}   (information)")
    print(f"  limit                               {LIMIT:12} /s  burst {BURST}")
    print(f"  achieved rate after the burst       {shared['achieved_rate']:12} /s  (within {RATE_TOLERANCE:.0%})")
    print(f"  admitted / allowed                  {shared['admitted']:>12} / {shared['allowed_total']:g}"
          f"  ({shared['refused']} refusals)")  # fmt: skip
    print(f"  busiest 1 s window                  {shared['busiest_window']:12}   (allowed {LIMIT + BURST})")
    print(f"pipeline on {pipe['database']}: one account, the simulated platform, no rate limit")
    materialise = f"start a campaign to {MATERIALIZE:,} fans"
    pumped = f"one pump, {pipe['pump_s']:.1f} s: {pipe['sent']:,} sent"
    print(f"  {materialise:36}{pipe['materialize_s']:12.2f} s  (target <= {MAX_MATERIALIZE_S:g})")
    print(f"  {pumped:36}{pipe['throughput']:12,.0f} /s  (target >= {MIN_THROUGHPUT:,})")
    recorded = f"into fans' threads: {pipe['recorded']:,}"
    print(f"  {recorded:36}{pipe['record_per_s']:12,.0f} /s  (information: the tick's batch)")
    failures = []
    if rate < MIN_DECISIONS_PER_S:
        failures.append(f"limiter decisions {rate:,.0f}/s < {MIN_DECISIONS_PER_S:,}/s")
    if abs(shared["achieved_rate"] - LIMIT) > RATE_TOLERANCE * LIMIT:
        failures.append(f"achieved rate {shared['achieved_rate']}/s is not within {RATE_TOLERANCE:.0%} of {LIMIT}/s")
    if shared["over_admitted"]:
        failures.append(f"{shared['over_admitted']} admitted above limit x seconds + burst")
    if shared["max_window_excess"]:
        failures.append(f"a 1 s window held {shared['max_window_excess']} more than limit + burst")
    if pipe["materialize_s"] > MAX_MATERIALIZE_S:
        failures.append(f"materialising {MATERIALIZE:,} took {pipe['materialize_s']:.1f} s > {MAX_MATERIALIZE_S:g} s")
    if pipe["throughput"] < MIN_THROUGHPUT:
        failures.append(f"throughput {pipe['throughput']:,.0f}/s < {MIN_THROUGHPUT:,}/s")
    if pipe["written"] != MATERIALIZE:
        failures.append(f"the campaign wrote {pipe['written']:,} deliveries, not {MATERIALIZE:,} ({pipe['started']})")
    if pipe["duplicates"]:
        failures.append(f"{pipe['duplicates']} messages sent twice")
    for failure in failures:
        print(f"MISSED  {failure}")
    if not failures:
        print("pass    limiter targets met")
    out = {
        "materialize_100k_s": round(pipe["materialize_s"], 2),
        "throughput_msgs_per_s": round(pipe["throughput"]),
        "limit_rate": LIMIT,
        "achieved_rate": shared["achieved_rate"],
        "max_window_excess": shared["max_window_excess"],
        "limiter_decisions_per_s": round(rate),
        "over_admitted": shared["over_admitted"],
        "_meta": {
            "mode": mode,
            "backend": backend,
            "limiter_sync_decisions_per_s": round(sync_rate),
            "admitted": shared["admitted"],
            "allowed_total": shared["allowed_total"],
            "busiest_window": shared["busiest_window"],
            "processes": PROCESSES,
            "seconds": seconds,
            "burst": BURST,
            "database": pipe["database"],
            "pump_outcomes": pipe["outcomes"],
            "recorded_messages_per_s": round(pipe["record_per_s"]),
            "python": platform.python_version(),
            "elapsed_s": round(time.monotonic() - began, 1),
            "ok": not failures,
        },
    }
    print(json.dumps(out))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
