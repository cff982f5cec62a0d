"""What the membership reads on the studio's and every page's path cost the CPU: the querysets they
were against the written-out statements of apps/accounts/selectors.py, in one process, paired.

A studio generation starts with a thread hop that re-reads the member's membership and the
creator (the socket may have been demoted or unassigned since the last message), then prepares
the prompt. Built and compiled as querysets, those two reads took most of that hop: about 3 ms of
CPU against 0.1 ms of database work, paid before the first word at every generation. Every page
and every websocket connect reads the current membership the same way.

Measured, alternating run by run (``--rounds`` pairs of ``--calls`` calls each):

- ``start``: the studio's check as it was (``membership_refresh`` as a queryset, then
  ``creator_get_for_member``) against ``member_and_creator``, each followed by the same
  ``studio_prepare`` (options, request-side safety check, prompt), as the consumer's hop runs it;
- ``current``: ``membership_current`` as it was (the chosen agency's membership, a queryset with
  its agency) against the written-out one.

CPU is ``time.thread_time`` of the calling thread, so other processes on the machine do not
count; the figures are the medians of the rounds, and the ratios the medians of paired ratios.
Exits 1 when a written-out read does not cost less CPU than its queryset. SQLite under a
temporary var/ (or ``DATABASE_URL``'s server, database ``hz_bench_stream_start``). Usage:

    python bench/stream_start.py [--quick] [--calls N] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 calls, 5 rounds")
    parser.add_argument("--calls", type=int, help="calls per measurement (default 1,000)")
    parser.add_argument("--rounds", type=int, help="paired rounds (default 7)")
    args = parser.parse_args(argv)
    calls = args.calls or (300 if args.quick else 1_000)
    rounds = args.rounds or (5 if args.quick else 7)
    if calls < 10 or not 1 <= rounds <= 100:
        parser.error("--calls must be at least 10 and --rounds 1..100")

    from _support import (  # bench/ is the script's own folder
        delete_studio_member,
        paired_cpu,
        report,
        studio_member,
        temporary_django,
    )

    mode = temporary_django("hz-bench-start-", "hz_bench_stream_start")

    from apps.accounts.models import Membership, Role
    from apps.accounts.permissions import Perm, has_perm
    from apps.accounts.selectors import creator_get_for_member, member_and_creator, membership_current
    from apps.studio.services import studio_prepare

    agency, user, membership, creator = studio_member("start", Role.CHATTER)
    data = {"type": "caption", "goal": "tease the new beach set"}

    def start_querysets() -> None:  # what the consumer's hop ran before (selectors at 7ec90ac)
        current = (
            Membership.objects.select_related("agency", "user")
            .filter(pk=membership.pk, user_id=membership.user_id, user__is_active=True)
            .first()
        )
        assert has_perm(current, Perm.SEND_MESSAGES)
        found = creator_get_for_member(membership=current, creator_id=creator.pk, include_archived=False)
        studio_prepare(membership=current, creator=found, data=data, save=False)

    def start_written() -> None:
        current, found = member_and_creator(membership=membership, creator_id=creator.pk)
        assert has_perm(current, Perm.SEND_MESSAGES) and found is not None
        studio_prepare(membership=current, creator=found, data=data, save=False)

    def current_queryset() -> None:
        memberships = Membership.objects.filter(user=user).select_related("agency")
        assert memberships.filter(agency_id=agency.pk).first() is not None

    def current_written() -> None:
        assert membership_current(user=user, agency_id=agency.pk) is not None

    pairs = {"start": (start_querysets, start_written), "current": (current_queryset, current_written)}

    measured = paired_cpu(pairs, calls, rounds)

    database = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
    print(f"{calls:,} calls x {rounds} paired rounds, {mode} ({database}), Python {platform.python_version()}, "
          f"{os.cpu_count()} CPU(s)")  # fmt: skip
    print(f"{'read':<10}{'queryset CPU ms':>17}{'written-out CPU ms':>20}{'ratio':>8}")
    result: dict[str, object] = {"calls": calls, "rounds": rounds, "mode": mode}
    missed = []
    for name, (before, after, ratio) in measured.items():
        print(f"{name:<10}{before:>17}{after:>20}{ratio:>8}")
        result |= {f"{name}_queryset_cpu_ms": before, f"{name}_written_cpu_ms": after, f"{name}_cpu_ratio": ratio}
        if ratio >= 1:
            missed.append(f"{name}_cpu_ratio < 1")
    code = report(result, missed)
    if mode == "services":  # the rows this run made, on a server other runs share
        delete_studio_member(agency, user)
    return code


if __name__ == "__main__":
    sys.exit(main())
