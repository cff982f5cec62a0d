"""What the plan's entitlement checks add to a page (target: at most 0.1 ms).

What it does:

- picks a database of its own (PostgreSQL ``hz_entitlements_bench`` on the server of
  ``DATABASE_URL`` when set, else SQLite under ``var/bench-entitlements``), migrates it, and
  makes one agency on the Agency plan with its owner and 4 creators (reused on later runs);
- uses the cache the settings choose: Django's local-memory cache in the embedded default, Redis
  when ``REDIS_URL`` is set (keys under the prefix ``hz-bench-entitlements``, apart from any
  running Huntaze's). A page takes the snapshot from the process's copy while the agency's
  entitlements version (read with the membership, as the tenancy middleware does) matches, so
  a warm page makes no cache round trip on either;
- measures, in-process, ``--samples`` times after a warm-up:

  - ``page``: what EntitlementsMiddleware adds to one page of a gated feature (``/campaigns/``):
    the per-request memo opened and closed, the memo primed from the process's copy
    (``snapshot_prime``: version compared, expiry checked), the page's feature found from its URL
    and asked; plus three more checks the page might make (memo hits). This is the number held to
    the target.
  - ``memo_hit``: one more check within the same request.
  - ``shared``: a page whose process copy is behind (another process changed the plan and
    refilled the shared cache; here: this process's copy dropped): one shared-cache read.
    Informational: once per process per agency per change or SNAPSHOT_TTL.
  - ``cold``: a check right after the plan changed (the snapshot loaded from the database);
    informational, it happens once per agency per plan change or SNAPSHOT_TTL.

Prints a table, then as its last line one JSON object mapping each measure to
``{"p50_ms", "p95_ms", "mean_ms"}`` (plus ``_meta``). Exits 1 when ``page``'s p95 is over
0.1 ms. Usage:

    python bench/entitlements.py
    python bench/entitlements.py --samples 20000
    REDIS_URL=redis://127.0.0.1:6379/0 python bench/entitlements.py
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_MS = 0.1
WARMUP = 500
SAMPLES = 5000
MARKER = "Entitlements bench"


def _timed(samples: int, run) -> list[float]:
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=SAMPLES)
    args = parser.parse_args()

    from _support import configure_django, percentile

    mode = configure_django(
        ROOT / "var" / "bench-entitlements", "hz_entitlements_bench", {"REDIS_KEY_PREFIX": "hz-bench-entitlements"}
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from django.test import RequestFactory
    from django.urls import resolve

    from apps.accounts.models import Agency, Creator, Membership, Role, User
    from apps.billing import entitlements
    from apps.billing.middleware import EntitlementsMiddleware
    from apps.billing.models import Plan
    from apps.billing.services import plan_catalogue_ensure, subscription_assign

    plan_catalogue_ensure()
    agency = Agency.objects.filter(name=MARKER).first()
    if agency is None:
        agency = Agency.objects.create(name=MARKER)
        user = User.objects.create_user(email="owner@entitlements-bench.local", password=None, full_name="Owner")
        Membership.objects.create(agency=agency, user=user, role=Role.OWNER)
        for index in range(4):
            Creator.objects.create(agency=agency, display_name=f"Bench creator {index}")
    subscription_assign(agency=agency, plan=Plan.objects.get(code="agency"), by=None, reason="bench")
    # As TenancyMiddleware reads it: the agency (and its entitlements version) joined.
    membership = Membership.objects.select_related("agency").filter(agency=agency).first()

    request = RequestFactory().get("/campaigns/")
    request.resolver_match = resolve("/campaigns/")

    class Tenant:  # what TenancyMiddleware puts on the request, reduced to what the gate reads
        pass

    request.tenant = Tenant()
    request.tenant.membership = membership
    middleware = EntitlementsMiddleware(lambda req: None)

    def page() -> None:
        token = entitlements.memo_open()
        try:
            assert middleware.process_view(request, None, (), {}) is None
            for _ in range(3):
                entitlements.entitlements_for(agency.pk).allows("campaigns")
        finally:
            entitlements.memo_close(token)

    token = entitlements.memo_open()
    entitlements.entitlements_for(agency.pk)

    def memo_hit() -> None:
        entitlements.entitlements_for(agency.pk).allows("campaigns")

    for _ in range(WARMUP):
        memo_hit()
    results = {"memo_hit": _timed(args.samples, memo_hit)}
    entitlements.memo_close(token)

    for _ in range(WARMUP):
        page()
    results["page"] = _timed(args.samples, page)

    def shared() -> None:
        entitlements.local_forget()
        page()

    results["shared"] = _timed(max(500, args.samples // 10), shared)

    def cold() -> None:
        entitlements.invalidate(agency.pk)
        entitlements.entitlements_for(agency.pk)

    results["cold"] = _timed(max(50, args.samples // 50), cold)

    report = {}
    print(f"{'measure':<10} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}")
    for name, times in results.items():
        row = {
            "p50_ms": round(percentile(times, 50), 4),
            "p95_ms": round(percentile(times, 95), 4),
            "mean_ms": round(sum(times) / len(times), 4),
        }
        report[name] = row
        print(f"{name:<10} {row['p50_ms']:>9} {row['p95_ms']:>9} {row['mean_ms']:>9}")
    over = report["page"]["p95_ms"] > TARGET_MS
    if over:
        print(f"target missed: page p95 {report['page']['p95_ms']} ms > {TARGET_MS} ms", file=sys.stderr)
    from django.conf import settings

    report["_meta"] = {
        "mode": mode,
        "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
        "samples": args.samples,
        "target_ms": TARGET_MS,
        "python": platform.python_version(),
        "ok": not over,
    }
    print(json.dumps(report))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
