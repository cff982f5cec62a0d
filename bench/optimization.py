"""The optimization engine's benchmark (issue #13): the nightly run's time at agency scale, and
each engine's accuracy against a known answer.

What it does, in one process with NumPy held to one thread (``OMP_NUM_THREADS=1`` and friends,
set before NumPy loads), so every figure is "on one core":

- **nightly_s**: picks a database of its own (PostgreSQL database ``hz_optimization_bench`` on
  the server of ``DATABASE_URL`` when that is set, else SQLite under ``var/bench-optimization/``),
  migrates it, and seeds an agency named ``Optimization bench <N> creators`` (reused when it
  exists, so only the first run pays for the seeding; its time is printed): N creators in eight
  timezones (Kathmandu's +5:45 and St John's -3:30 among them), each with 365 days of the ten
  daily metrics (weekly seasonality, log-normal noise, a trend and a few outages), about 1.5
  posts a day with engagement peaking at a creator-specific local hour, 60 days of hourly
  messaging rows and 30 PPV offers on a logistic demand curve. Then it deletes the agency's
  recommendations and anomalies and times ``services.run_nightly(agency_id=…)``: reading every
  series, the pricing, timing and anomaly engines for every creator, storing recommendations
  and anomalies, alerts, and outcome measurement. N is 500 (``--quick``: 100; the 500-creator
  figure is then extrapolated linearly and labelled so). Beside the wall time it prints the run's
  own CPU time and the load average before and after: on a shared machine the wall time measures
  mostly the other processes.
- **pricing_oracle_ratio**: ``pricing_sim.evaluate_pricing`` on seed 99, which the engine was
  not tuned on: revenue of the pricing policy over 20 offers to 200 recipients as a share of
  the oracle price's, averaged over five demand-curve shapes (40 runs per shape; quick: 12).
  Beside it (in ``_meta``, not a target of its own): the same on the four shapes the engine was
  never tuned on (``pricing_sim.HELDOUT_CURVES``), ``pricing_heldout_shapes_ratio``.
- **timing_top3_hit_rate**: ``timing_sim.evaluate_timing`` on seeds 11-14 (quick: 11), 10
  creators each, 90 days of posts: the share of creators whose true best slot is in the
  engine's top three.
- **nab_dev_score**: the anomaly detector on the NAB development data
  (``../shared/data/nab-dev`` next to the checkout, or ``--nab-dir``), NAB standard profile with
  the threshold swept on that data (as NAB does). **nab_heldout_score**: the same detections,
  each top-level folder scored at the threshold swept on the other folders, pooled
  (``nab.held_out_scores``); **nab_lofile_score**: the same with each file held out in turn.

Prints a table, then as its last line one JSON object with ``nightly_s``, ``pricing_oracle_ratio``,
``timing_top3_hit_rate``, ``nab_dev_score`` (and the details). Exits 1 when a target is missed:
nightly ≤ 60 s for 500 creators, pricing ≥ 0.95 of the oracle, NAB standard ≥ 65 both on the
development data and held out by folder (the issue's target is on data the detector was not tuned
on; the detector's design was chosen on this data, so the held-out figure protects the threshold,
not the design: docs/optimization-anomalies.md). Usage:

    python bench/optimization.py            # 500 creators (first run seeds for a few minutes)
    python bench/optimization.py --quick    # 100 creators, fewer simulator runs: under 60 s once seeded
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x python bench/optimization.py --quick
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402

from _support import configure_django  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG_DATABASE = "hz_optimization_bench"
FULL_CREATORS, QUICK_CREATORS = 500, 100
DAYS = 365
HOURLY_DAYS = 60
OFFERS_PER_CREATOR = 30
NIGHTLY_TARGET_S = 60.0
PRICING_TARGET = 0.95
NAB_TARGET = 65.0
PRICING_SEED = 99
TIMING_SEEDS = (11, 12, 13, 14)
ZONES = (
    "America/New_York",
    "Europe/London",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Asia/Tokyo",
)
# The run's "today": fixed, so two runs measure the same work.
TODAY = date(2026, 11, 30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 creators and fewer simulator runs")
    parser.add_argument("--creators", type=int, help="creators in the nightly run (default 500, quick 100)")
    parser.add_argument("--nab-dir", type=Path, default=ROOT.parent / "shared" / "data" / "nab-dev")
    args = parser.parse_args()
    creators = args.creators or (QUICK_CREATORS if args.quick else FULL_CREATORS)

    mode = configure_django(ROOT / "var" / "bench-optimization", PG_DATABASE)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()

    nightly = measure_nightly(creators)
    pricing = measure_pricing(runs=12 if args.quick else 40)
    timing = measure_timing(TIMING_SEEDS[:1] if args.quick else TIMING_SEEDS)
    nab_result = measure_nab(args.nab_dir)
    nab_score = None if nab_result is None else nab_result["dev"]

    at_500 = nightly["seconds"] * FULL_CREATORS / creators
    extrapolated = "" if creators == FULL_CREATORS else f" (~{at_500:.1f} s for 500, linear)"
    rows = [
        ("nightly run", f"{nightly['seconds']:.1f} s for {creators} creators{extrapolated}",
         f"<= {NIGHTLY_TARGET_S:.0f} s"),
        ("  its CPU time", f"{nightly['cpu_s']:.1f} s (load {nightly['load'][0]:.1f} -> {nightly['load'][1]:.1f})", ""),
        ("pricing vs oracle", f"{pricing['ratio']:.3f} (seed {PRICING_SEED}, {pricing['runs']} runs/shape)",
         f">= {PRICING_TARGET}"),
        ("timing top-3 hit", f"{timing['hit_rate']:.3f} (naive {timing['naive']:.3f}, {timing['creators']} creators)",
         ""),
        ("NAB standard (dev)", "n/a (no data)" if nab_result is None else
         f"{nab_result['dev']:.1f} swept; held out by folder {nab_result['heldout']:.1f}, by file "
         f"{nab_result['lofile']:.1f} ({nab_result['detector_s']:.1f} s)", f">= {NAB_TARGET:.0f}"),
    ]  # fmt: skip
    print(f"\noptimization benchmark ({mode}, {platform.machine()}, {os.cpu_count()} cpus)")
    for name, value, target in rows:
        print(f"  {name:<20} {value:<60} {target}")
    for shape in pricing["shapes"]:
        print(f"    pricing {shape['curve']:<14} {shape['oracle_ratio']:.3f}")
    print(f"    pricing on held-out shapes {pricing['heldout_ratio']:.3f}")
    for shape in pricing["heldout_shapes"]:
        print(f"    pricing {shape['curve']:<14} {shape['oracle_ratio']:.3f} (held-out shape)")
    print(f"    nightly detail: {nightly['report']}")

    missed = []
    if at_500 > NIGHTLY_TARGET_S:
        missed.append("nightly_s")
    if pricing["ratio"] < PRICING_TARGET:
        missed.append("pricing_oracle_ratio")
    if nab_score is None or nab_score < NAB_TARGET:
        missed.append("nab_dev_score")
    if nab_result is None or nab_result["heldout"] < NAB_TARGET:
        missed.append("nab_heldout_score")
    result = {
        "nightly_s": round(nightly["seconds"], 2),
        "nightly_creators": creators,
        "nightly_s_for_500": round(at_500, 2),
        "pricing_oracle_ratio": round(pricing["ratio"], 4),
        "timing_top3_hit_rate": round(timing["hit_rate"], 4),
        "nab_dev_score": None if nab_score is None else round(nab_score, 1),
        "nab_heldout_score": None if nab_result is None else round(nab_result["heldout"], 1),
        "nab_lofile_score": None if nab_result is None else round(nab_result["lofile"], 1),
        "_meta": {
            "mode": mode,
            "quick": args.quick,
            "seed_s": round(nightly["seed_s"], 1),
            # This process's CPU time in the nightly run and the machine's 1-minute load average
            # before and after it: on a shared machine the wall time above is mostly the others' load.
            "nightly_cpu_s": round(nightly["cpu_s"], 2),
            "load_average": [round(value, 2) for value in nightly["load"]],
            "nightly_report": nightly["report"],
            "pricing_by_shape": {shape["curve"]: round(shape["oracle_ratio"], 4) for shape in pricing["shapes"]},
            "pricing_heldout_shapes_ratio": round(pricing["heldout_ratio"], 4),
            "pricing_by_heldout_shape": {
                shape["curve"]: round(shape["oracle_ratio"], 4) for shape in pricing["heldout_shapes"]
            },
            "timing_naive_hit_rate": round(timing["naive"], 4),
            "total_s": round(time.perf_counter() - started, 1),
            "missed": missed,
        },
    }
    print(json.dumps(result))
    return 1 if missed else 0


# -- nightly ---------------------------------------------------------------------------------------


def measure_nightly(creators: int) -> dict:
    from apps.accounts.models import Agency
    from apps.optimization import services
    from apps.optimization.models import Anomaly, Recommendation

    name = f"Optimization bench {creators} creators"
    seed_started = time.perf_counter()
    agency = Agency.objects.filter(name=name).first()
    if agency is None:
        agency = seed_agency(name, creators)
        print(f"seeded {name} in {time.perf_counter() - seed_started:.1f} s")
    seed_s = time.perf_counter() - seed_started
    Recommendation.objects.filter(agency=agency).delete()
    Anomaly.objects.filter(agency=agency).delete()
    now = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=3, minutes=30)
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    report = services.run_nightly(agency_id=agency.pk, now=now)
    seconds = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    return {
        "seconds": seconds, "cpu_s": cpu_s, "load": (load_before, os.getloadavg()[0]), "seed_s": seed_s,
        "report": _plain(report),
    }  # fmt: skip


def _plain(report) -> dict:
    from dataclasses import asdict, is_dataclass

    return {key: value for key, value in (asdict(report) if is_dataclass(report) else vars(report)).items()}


def seed_agency(name: str, creators: int):
    """Bulk-inserted data of the shapes the engines meet (not the demo data: far more of it)."""
    import numpy as np
    from django.db import transaction

    from apps.accounts.models import Agency, Creator
    from apps.optimization.models import DailyPerformance, HourlyPerformance, Offer, Source
    from apps.studio.models import Post

    rng = np.random.default_rng(20261130)
    with transaction.atomic():
        agency = Agency.objects.create(name=name)
        people = Creator.objects.bulk_create(
            Creator(agency=agency, display_name=f"Creator {index:04d}", timezone=ZONES[index % len(ZONES)])
            for index in range(creators)
        )
    first_day = TODAY - timedelta(days=DAYS)
    days = np.arange(DAYS)
    weekday = np.array([(first_day + timedelta(days=int(d))).weekday() for d in days])
    for creator in people:
        scale = rng.lognormal(0, 0.6)
        weekly = 1 + 0.25 * np.isin(weekday, (4, 5, 6))
        trend = np.exp(np.linspace(0, rng.normal(0, 0.3), DAYS))
        level = scale * weekly * trend
        outage = np.ones(DAYS)
        for start in rng.integers(60, DAYS - 3, size=2):
            outage[start : start + 3] = rng.uniform(0.2, 0.5)

        def noisy(mean, sigma=0.35, level=level, outage=outage):
            return mean * level * outage * rng.lognormal(-sigma * sigma / 2, sigma, DAYS)

        posts = rng.poisson(1.5, DAYS)
        columns = {
            "revenue_subscriptions": noisy(120), "revenue_tips": noisy(40, 0.8), "revenue_ppv": noisy(60, 0.6),
            "revenue_messages": noisy(25, 0.7), "new_subscribers": noisy(8), "churned_subscribers": noisy(6),
            "engagement": noisy(300) * posts / 1.5, "messages_received": noisy(90), "ppv_unlocks": noisy(5),
        }  # fmt: skip
        DailyPerformance.objects.bulk_create(
            (
                DailyPerformance(
                    agency=agency, creator=creator, day=first_day + timedelta(days=int(d)), posts=int(posts[d]),
                    source=Source.DEMO,
                    **{
                        key: Decimal(f"{values[d]:.2f}") if key.startswith("revenue") else round(float(values[d]))
                        for key, values in columns.items()
                    },
                )
                for d in days
            ),
            batch_size=2000,
        )  # fmt: skip
        _seed_posts(rng, agency, creator, posts, first_day, Post)
        _seed_hourly(rng, agency, creator, HourlyPerformance, Source)
        _seed_offers(rng, agency, creator, Offer, Source, scale)
    return agency


def _local_peak_utc(creator, day: date, hour: float) -> datetime:
    from zoneinfo import ZoneInfo

    local = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(creator.timezone)) + timedelta(hours=hour)
    return local.astimezone(UTC)


def _seed_posts(rng, agency, creator, posts, first_day: date, Post) -> None:
    peak = rng.integers(9, 23)
    rows = []
    for d, count in enumerate(posts):
        for _ in range(int(count)):
            hour = float(rng.uniform(8, 24))
            boost = 1.8 if int(hour) == peak else 1.0
            likes = int(rng.poisson(200 * boost))
            rows.append(
                Post(
                    agency=agency, creator=creator, platform="onlyfans", category="photo",
                    posted_at=_local_peak_utc(creator, first_day + timedelta(days=d), hour),
                    likes=likes, comments=int(rng.poisson(likes / 20)),
                )
            )  # fmt: skip
    Post.objects.bulk_create(rows, batch_size=2000)


def _seed_hourly(rng, agency, creator, HourlyPerformance, Source) -> None:
    start = datetime.combine(TODAY - timedelta(days=HOURLY_DAYS), datetime.min.time(), tzinfo=UTC)
    peak = int(rng.integers(0, 24))
    rows = []
    for day in range(HOURLY_DAYS):
        for hour in sorted(set(rng.integers(0, 24, size=3).tolist())):
            sent = int(rng.integers(20, 200))
            rate = 0.12 if hour == peak else 0.06
            rows.append(
                HourlyPerformance(
                    agency=agency, creator=creator, hour=start + timedelta(days=day, hours=hour),
                    messages_sent=sent, message_replies=int(rng.binomial(sent, rate)),
                    revenue=Decimal(f"{rng.gamma(2, 10):.2f}"), engagement=int(rng.poisson(40)), source=Source.DEMO,
                )
            )  # fmt: skip
    HourlyPerformance.objects.bulk_create(rows, batch_size=2000)


def _seed_offers(rng, agency, creator, Offer, Source, scale: float) -> None:
    import numpy as np

    sweet = 12 * scale**0.3
    rows = []
    for index in range(OFFERS_PER_CREATOR):
        price = float(rng.choice([5, 8, 10, 12, 15, 18, 20, 25, 30]))
        rate = 0.35 / (1 + np.exp((price - sweet) / 4))
        recipients = int(rng.integers(80, 400))
        unlocks = int(rng.binomial(recipients, rate))
        rows.append(
            Offer(
                agency=agency, creator=creator, price=Decimal(f"{price:.2f}"), recipients=recipients, unlocks=unlocks,
                revenue=Decimal(f"{price * unlocks:.2f}"), source=Source.DEMO,
                sent_at=datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) - timedelta(days=int(300 - index * 9)),
            )
        )  # fmt: skip
    Offer.objects.bulk_create(rows)


# -- accuracy ------------------------------------------------------------------------------------


def measure_pricing(runs: int) -> dict:
    from dataclasses import asdict

    from apps.optimization.pricing_sim import HELDOUT_CURVES, evaluate_pricing

    evaluation = evaluate_pricing(PRICING_SEED, runs)
    # Shapes added after the engine's constants were chosen (pricing_sim.HELDOUT_CURVES): reported
    # beside the target figure, which stays on CURVES so that it compares with earlier runs.
    heldout = evaluate_pricing(PRICING_SEED, runs, curves=HELDOUT_CURVES)
    return {
        "ratio": evaluation.oracle_ratio,
        "runs": runs,
        "seconds": evaluation.seconds + heldout.seconds,
        "shapes": [asdict(shape) for shape in evaluation.shapes],
        "heldout_ratio": heldout.oracle_ratio,
        "heldout_shapes": [asdict(shape) for shape in heldout.shapes],
    }


def measure_timing(seeds) -> dict:
    from apps.optimization.timing_sim import evaluate_timing

    evaluation = evaluate_timing(list(seeds), 10, days=90)
    return {"hit_rate": evaluation.hit_rate, "naive": evaluation.naive_hit_rate, "creators": evaluation.creators}


def measure_nab(nab_dir: Path) -> dict | None:
    """NAB standard profile on the development data: swept on all of it (``dev``), and held out by
    top-level folder (``heldout``) and by file (``lofile``), pooled (docs/optimization-anomalies.md)."""
    from apps.optimization import anomalies, nab

    windows = nab_dir / "combined_windows.json"
    if not windows.exists():
        print(f"NAB development data not found at {nab_dir} (pass --nab-dir): nab_dev_score is null")
        return None
    files = nab.load_corpus(nab_dir / "data", windows)
    started = time.perf_counter()
    scores = {f.name: anomalies.anomaly_scores(f.timestamps, f.values) for f in files}
    detector_s = time.perf_counter() - started
    truths = {f.name: f.truth for f in files}
    standard = nab.PROFILES["standard"]
    by_folder = nab.held_out_scores(scores, truths, lambda name: name.split("/")[0], standard)
    by_file = nab.held_out_scores(scores, truths, lambda name: name, standard)
    return {
        "dev": nab.corpus_score(scores, truths, standard).normalised,
        "heldout": nab.pooled_score(by_folder, standard),
        "lofile": nab.pooled_score(by_file, standard),
        "detector_s": detector_s,
    }


if __name__ == "__main__":
    sys.exit(main())
