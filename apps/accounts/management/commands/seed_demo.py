"""Build the demo agency: every app contributes through its ``demo.py`` hook (apps/core/registry.py).

It lives in accounts, not core, because it knows the demo agency and its logins (apps/accounts/demo.py).
"""

from __future__ import annotations

import random
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.accounts import demo as accounts_demo
from apps.core.registry import DemoContext, demo_seeders


class Command(BaseCommand):
    help = "Create a demo agency with users, creators and every app's demo data."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--creators", type=int, default=4, help="Number of creators (1 to 500, default 4).")
        parser.add_argument("--fans", type=int, default=200, help="Fans per creator, for apps that seed fans.")
        parser.add_argument(
            "--messages",
            type=int,
            default=None,
            help="Messages in all, across every creator's fans (default: 10 a fan).",
        )
        parser.add_argument("--seed", type=int, default=2026, help="Random seed, for repeatable data.")
        parser.add_argument("--reset", action="store_true", help="Delete the existing demo agency and users first.")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when demo data already exists.")

    def handle(self, *args, **options) -> None:
        if not 1 <= options["creators"] <= 500:
            raise CommandError("--creators must be between 1 and 500.")
        if not 0 <= options["fans"] <= 100_000:
            raise CommandError("--fans must be between 0 and 100000.")
        if options["messages"] is not None and not 0 <= options["messages"] <= 50_000_000:
            raise CommandError("--messages must be between 0 and 50000000.")
        if accounts_demo.exists():
            if options["if_empty"]:
                self.stdout.write("Demo data already present; nothing to do.")
                self._print_logins()
                return
            if not options["reset"]:
                raise CommandError("Demo data already exists. Use --reset to rebuild it.")
            accounts_demo.reset()
        started = time.perf_counter()
        ctx = DemoContext(
            options={key: options[key] for key in ("creators", "fans", "messages", "seed")},
            log=lambda message: self.stdout.write(f"  {message}"),
            rng=random.Random(options["seed"]),
        )
        with transaction.atomic():
            for module in demo_seeders():
                module.seed(ctx)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready in {time.perf_counter() - started:.1f}s."))
        self._print_logins()

    def _print_logins(self) -> None:
        self.stdout.write(f"Demo logins (password for all: {accounts_demo.DEMO_PASSWORD}):")
        for role in ("owner", "manager", "chatter", "viewer"):
            self.stdout.write(f"  {role:8} {role}@{accounts_demo.DEMO_DOMAIN}")
        self.stdout.write(
            f"  operator operator@{accounts_demo.DEMO_DOMAIN} (staff: /monitoring/, and monitoring in /admin/)"
        )
