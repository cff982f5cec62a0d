"""Automations at scale: how fast beat's tick finds a burst of events and sends their due steps.

The case measured is the largest an agency makes: a PPV campaign to many fans, most of whom do not
buy, so the PPV follow-up automation has one run per fan to start and one message per fan to send
when the wait is over. On the product's code path (``automations_tick``), on the database of the
mode (SQLite file, or PostgreSQL when ``DATABASE_URL`` is set), with the default frequency cap on:

- ``discover_runs_per_s``: the first tick after the offers went out (not due yet) starts one run
  per locked offer: events found and runs written per second;
- ``steps_per_s``: ticks with the clock past the wait send every run's first step (stop rules,
  the frequency cap, the per-fan text, one delivery each): messages handed to the pipeline per
  second, over as many ticks as it takes (a tick stops after ``TICK_SECONDS``).

Targets: at least 1,000 runs started per second and 100 steps per second (a 100,000-fan offer's
follow-ups handed to the pipeline within 17 minutes of their wait, which is hours; the accounts'
send rate, one message every 3 s by default, is the slower part anyway), and exactly one delivery
per fan. The tick checks 50 runs together (their stop rules and caps in a few queries) and
commits once per 50; each step still writes its own delivery and run update. Prints a table,
then one JSON line; exits 1 when a target is missed. Usage:

    python bench/automations.py [--quick]                                  # embedded (SQLite)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x python bench/automations.py   # PostgreSQL
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FANS = 10_000
QUICK_FANS = 2_000
MIN_RUNS_PER_S = 1_000
MIN_STEPS_PER_S = 100
PG_DATABASE = "hz_automations_bench"


def run(fans: int) -> dict:
    from _support import configure_django

    mode = configure_django(ROOT / "var" / "bench-automations", PG_DATABASE, {"CELERY_BROKER_URL": "memory://"})
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from apps.accounts.models import Agency, Creator, Membership, Role, User
    from apps.campaigns import automations
    from apps.campaigns.models import AUTOMATION_SOURCE, Automation, AutomationRun
    from apps.delivery.models import Delivery
    from apps.messaging.models import Conversation, Direction, Fan, Message, MessageStatus, Source

    call_command("migrate", verbosity=0)
    agency, _ = Agency.objects.get_or_create(name="Automations bench")
    creator, _ = Creator.objects.get_or_create(agency=agency, display_name="Bench creator")
    user, _ = User.objects.get_or_create(email="bench-automations@example.com")
    owner, _ = Membership.objects.get_or_create(agency=agency, user=user, defaults={"role": Role.OWNER})
    Delivery.objects.filter(agency=agency).delete()
    AutomationRun.objects.filter(agency=agency).delete()
    Automation.objects.filter(agency=agency).delete()
    Message.objects.filter(agency=agency).delete()
    Conversation.objects.filter(agency=agency).delete()
    Fan.objects.filter(agency=agency).delete()
    now = timezone.now()
    # Set-up, not timed: the fans, a conversation each and one locked PPV sent 10 minutes ago.
    made = Fan.objects.bulk_create(
        [
            Fan(agency=agency, creator=creator, platform="onlyfans", platform_fan_id=f"fan-{i}",
                username=f"fan{i}", display_name=f"Fan{i} Bench")
            for i in range(fans)
        ],
        batch_size=2000,
    )  # fmt: skip
    conversations = Conversation.objects.bulk_create(
        [Conversation(agency=agency, creator=creator, fan=fan) for fan in made], batch_size=2000
    )
    sent_at = now - timedelta(minutes=10)
    Message.objects.bulk_create(
        [
            Message(agency=agency, creator=creator, conversation=conversation, fan_id=conversation.fan_id,
                    direction=Direction.OUTBOUND, text="The full set", media_count=1, ppv_price=Decimal("15.00"),
                    source=Source.CAMPAIGN, status=MessageStatus.SENT, created_at=sent_at, sent_at=sent_at)
            for conversation in conversations
        ],
        batch_size=2000,
    )  # fmt: skip
    automation = automations.automation_save(
        membership=owner, creator=creator, kind="ppv_followup", enabled=True,
        steps=[automations.StepInput(delay_minutes=30, text="Did you see it, {fan.first_name|babe}?")],
    )  # fmt: skip
    Automation.objects.filter(pk=automation.pk).update(enabled_at=now - timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    began = time.perf_counter()
    first = automations.automations_tick()
    discover_s = time.perf_counter() - began

    due = now + timedelta(minutes=25)
    sent, ticks = 0, 0
    began = time.perf_counter()
    while sent < fans and ticks < 100:
        sent += automations.automations_tick(now=due)["sent"]
        ticks += 1
    steps_s = time.perf_counter() - began
    deliveries = Delivery.objects.filter(agency=agency, source=AUTOMATION_SOURCE)
    result = {
        "mode": mode,
        "database": connection.vendor,
        "fans": fans,
        "started": first["started"],
        "discover_s": discover_s,
        "sent": sent,
        "ticks": ticks,
        "steps_s": steps_s,
        "deliveries": deliveries.count(),
        "distinct_fans": deliveries.values("recipient_id").distinct().count(),
    }
    Delivery.objects.filter(agency=agency).delete()
    AutomationRun.objects.filter(agency=agency).delete()
    Message.objects.filter(agency=agency).delete()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_FANS:,} fans instead of {FANS:,}")
    args = parser.parse_args(argv)
    began = time.monotonic()
    fans = QUICK_FANS if args.quick else FANS
    result = run(fans)
    runs_per_s = result["started"] / result["discover_s"] if result["discover_s"] else 0.0
    steps_per_s = result["sent"] / result["steps_s"] if result["steps_s"] else 0.0
    print(f"bench/automations.py on {result['database']}: a PPV to {fans:,} fans left unbought, follow-up on")
    print(f"  first tick: runs started                 {result['started']:>8,} in {result['discover_s']:6.2f} s"
          f"  {runs_per_s:8,.0f} /s  (target >= {MIN_RUNS_PER_S:,})")  # fmt: skip
    label = f"after the wait: steps sent ({result['ticks']} ticks)"
    print(f"  {label:41}{result['sent']:>8,} in {result['steps_s']:6.2f} s"
          f"  {steps_per_s:8,.0f} /s  (target >= {MIN_STEPS_PER_S:,})")  # fmt: skip
    print(f"  deliveries written / fans reached        {result['deliveries']:>8,} / {result['distinct_fans']:,}")
    failures = []
    if result["started"] != fans:
        failures.append(f"the first tick started {result['started']:,} runs, not {fans:,}")
    if runs_per_s < MIN_RUNS_PER_S:
        failures.append(f"runs started {runs_per_s:,.0f}/s < {MIN_RUNS_PER_S:,}/s")
    if steps_per_s < MIN_STEPS_PER_S:
        failures.append(f"steps sent {steps_per_s:,.0f}/s < {MIN_STEPS_PER_S:,}/s")
    if result["deliveries"] != fans or result["distinct_fans"] != fans:
        failures.append(f"{result['deliveries']:,} deliveries to {result['distinct_fans']:,} fans, not one each")
    for failure in failures:
        print(f"MISSED  {failure}")
    if not failures:
        print("pass    automation targets met")
    out = {
        "discover_runs_per_s": round(runs_per_s),
        "steps_per_s": round(steps_per_s),
        "fans": fans,
        "_meta": {
            "mode": result["mode"],
            "database": result["database"],
            "ticks": result["ticks"],
            "seconds": round(time.monotonic() - began, 1),
            "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        },
    }
    print(json.dumps(out))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
