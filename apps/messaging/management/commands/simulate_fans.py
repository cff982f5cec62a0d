"""SIMULATED fans: make an agency's fans write, subscribe, switch renewal off and buy, through the
same ingest services a platform connector calls (apps/messaging/simulation.py)."""

from __future__ import annotations

import random

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Agency
from apps.messaging.simulation import demo_agency_id, simulate


class Command(BaseCommand):
    help = (
        "SIMULATED fan activity (no platform is contacted): inbound messages, new subscriptions, "
        "renewals switched off, tips, PPV unlocks and paid messages for an agency's creators."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--agency", type=int, default=None, help="Agency id (default: the demo agency).")
        parser.add_argument("--events", type=int, default=20, help="Number of simulated events (1 to 100000).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for a repeatable run.")

    def handle(self, *args, **options) -> None:
        if not 1 <= options["events"] <= 100_000:
            raise CommandError("--events must be between 1 and 100000.")
        agency_id = options["agency"] if options["agency"] is not None else demo_agency_id()
        if agency_id is None:
            raise CommandError("No demo agency: run `manage.py seed_demo` first, or pass --agency.")
        agency = Agency.objects.filter(pk=agency_id).first()
        if agency is None:
            raise CommandError(f"No agency with id {agency_id}.")
        rng = random.Random(options["seed"])
        report = simulate(agency_id=agency.pk, events=options["events"], rng=rng)
        detail = ", ".join(f"{kind.replace('_', ' ')}: {count}" for kind, count in sorted(report.counts.items()))
        self.stdout.write(
            f"Simulated {report.events} fan events for “{agency.name}” ({detail or 'none'}); "
            f"{report.skipped} skipped (nothing to act on)."
        )
