"""Load test of the pages while generations stream: what members feel when the server is busy.

Runs on loopback, bounded in time:

- the streaming benchmark's provider (bench/streaming.py: OpenAI-style, one chunk every 20 ms,
  40 chunks an answer) and its daphne processes (one per CPU, DEBUG off), on a database of their
  own (a SQLite file in a temporary folder, or DATABASE_URL / REDIS_URL when set);
- ``--members`` (default 50) simulated members, each logged in with a session of its own, browsing
  the dashboard, the studio and the idea board a second or two apart (locust, headless:
  bench/_locustfile.py);
- at the same time ``--streamers`` (default 20) studio websockets generating one answer after
  another (bench/streaming.py's clients), for the whole run.

Reported: p50 and p95 per page and failures (locust), and for the generations the number
completed, errors and the chunk overhead (provider write -> browser read) p50. Usage:

    python bench/load.py                 # 60 s of load
    python bench/load.py --quick         # 20 s
    make load

Needs locust (the ``bench`` extra: ``pip install -r requirements-bench.lock``). Missed targets (no
failed page or generation, page p95 <= 1 s) are printed as MISSED; the exit code stays 0 unless
the load test could not run. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import streaming as S  # bench/ is the script's own folder
from _support import delete_redis_keys

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = 50
STREAMERS = 20
RUN_SECONDS = 60
QUICK_SECONDS = 20
PAGE_P95_TARGET_MS = 1000.0


def build_members(world: S.World, count: int) -> list[str]:
    """``count`` managers of the benchmark's agency, each with a logged-in session: their keys."""
    from django.conf import settings
    from django.db import connections
    from django.test import Client

    from apps.accounts.middleware import SESSION_AGENCY
    from apps.accounts.models import Membership, Role, User

    keys = []
    tag = secrets.token_hex(3)
    for index in range(count):
        user = User.objects.create_user(email=f"load-{tag}-{index}@bench.huntaze.local", password=None)
        Membership.objects.create(agency_id=world.agency_id, user=user, role=Role.MANAGER)
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        session = client.session
        session[SESSION_AGENCY] = world.agency_id
        session.save()
        keys.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
    connections.close_all()
    return keys


async def stream_for(ports: list[int], world: S.World, streamers: int, until: float) -> list[S.StreamResult]:
    """``streamers`` sockets, each starting its next generation as soon as the last one ends."""
    results: list[S.StreamResult] = []

    async def one_socket(index: int) -> None:
        await asyncio.sleep(index * 0.05)  # not all in the same instant
        while time.monotonic() < until:
            batch = await S.generations([ports[index % len(ports)]], world.session_key, world.creator_id, 1, 60.0)
            results.extend(batch)

    await asyncio.gather(*(one_socket(i) for i in range(streamers)))
    return results


def read_locust_stats(prefix: str) -> dict[str, dict[str, Any]]:
    pages: dict[str, dict[str, Any]] = {}
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            pages[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50_ms": float(row["50%"]) if row["50%"] not in ("", "N/A") else None,
                "p95_ms": float(row["95%"]) if row["95%"] not in ("", "N/A") else None,
                "rps": round(float(row["Requests/s"]), 1),
            }
    return pages


def read_locust_failures(prefix: str) -> list[str]:
    with open(f"{prefix}_failures.csv", newline="") as handle:
        return [f"{row['Occurrences']} x {row['Name']}: {row['Error']}" for row in csv.DictReader(handle)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SECONDS} s of load instead of {RUN_SECONDS}")
    parser.add_argument("--members", type=int, default=MEMBERS, help=f"simulated members (default {MEMBERS})")
    parser.add_argument("--streamers", type=int, default=STREAMERS, help=f"streaming sockets (default {STREAMERS})")
    parser.add_argument("--seconds", type=int, default=None, help="length of the load (default 60, quick 20)")
    parser.add_argument("--servers", type=int, default=os.cpu_count() or 1, help="daphne processes")
    args = parser.parse_args(argv)
    seconds = args.seconds or (QUICK_SECONDS if args.quick else RUN_SECONDS)
    if not 1 <= args.members <= 500 or not 0 <= args.streamers <= 200 or not 5 <= seconds <= 600:
        parser.error("--members 1..500, --streamers 0..200 and --seconds 5..600")
    locust = shutil.which("locust") or str(Path(sys.executable).with_name("locust"))
    if not Path(locust).exists():
        print("locust is not installed: pip install -r requirements-bench.lock", file=sys.stderr)
        return 2

    began = time.monotonic()
    var_dir = tempfile.mkdtemp(prefix="huntaze-bench-load-")
    logs = {name: tempfile.TemporaryFile() for name in ("provider", "daphne", "locust")}  # noqa: SIM115
    provider = None
    servers: list[subprocess.Popen] = []
    world = None
    services = bool(os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"))
    out: dict[str, Any] | None = None
    try:
        provider, provider_url = S.start_provider(S.QUICK_CHUNKS, S.CHUNK_DELAY_MS / 1000, logs["provider"])
        ports = [S.free_port() for _ in range(args.servers)]
        os.environ.update(S.app_environment(provider_url, var_dir, ports[0]))

        import django

        django.setup()
        from django.core.management import call_command

        call_command("collectstatic", interactive=False, verbosity=0)  # DEBUG off: pages need the manifest
        world = S.build_world()
        sessions = build_members(world, args.members)
        sessions_file = Path(var_dir) / "sessions.json"
        sessions_file.write_text(json.dumps(sessions))
        for port in ports:
            command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "huntaze.asgi:application"]
            servers.append(subprocess.Popen(command, cwd=ROOT, env={**os.environ}, stdout=logs["daphne"],
                                            stderr=subprocess.STDOUT))  # fmt: skip
        for port, server in zip(ports, servers, strict=True):
            S.wait_for_server(f"http://127.0.0.1:{port}", server, S.STARTUP_TIMEOUT)
        asyncio.run(S.generations(ports, world.session_key, world.creator_id, len(ports), 60.0))  # warm-up

        prefix = str(Path(var_dir) / "locust")
        members = subprocess.Popen(
            [locust, "-f", str(Path(__file__).with_name("_locustfile.py")), "--headless", "--users",
             str(args.members), "--spawn-rate", str(max(1, args.members // 5)), "--run-time", f"{seconds}s",
             "--host", f"http://127.0.0.1:{ports[0]}", "--csv", prefix, "--only-summary", "--stop-timeout", "5",
             "--loglevel", "WARNING"],
            cwd=ROOT, env={**os.environ, "LOAD_SESSIONS": str(sessions_file),
                           "LOAD_PORTS": ",".join(map(str, ports))},
            stdout=logs["locust"], stderr=subprocess.STDOUT,
        )  # fmt: skip
        cpu_before = {f"daphne{i + 1}": S.cpu_seconds(server.pid) for i, server in enumerate(servers)}
        wall_before = time.monotonic()
        streams = asyncio.run(stream_for(ports, world, args.streamers, time.monotonic() + seconds))
        try:
            members.wait(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            members.kill()
            raise RuntimeError("locust did not stop in time") from None
        wall = time.monotonic() - wall_before
        cpu = {}
        for index, server in enumerate(servers):
            after, before = S.cpu_seconds(server.pid), cpu_before[f"daphne{index + 1}"]
            if after is not None and before is not None:
                cpu[f"daphne{index + 1}"] = round(100 * (after - before) / wall)

        pages = read_locust_stats(prefix)
        failures = read_locust_failures(prefix)
        analysed = S.analyse(streams, S.QUICK_CHUNKS)
        stream_errors = [r.error for r in streams if r.error]
        print()
        print(f"Load test — {'services' if services else 'embedded'} mode, {args.servers} daphne process(es), "
              f"{args.members} members browsing and {args.streamers} sockets generating for {seconds} s, "
              f"{os.cpu_count()} CPU(s)")  # fmt: skip
        print()
        print(f"{'page':<14} {'requests':>9} {'failures':>9} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>7}")
        for name in ("dashboard", "studio", "idea board", "Aggregated"):
            page = pages.get(name)
            if page:
                print(f"{name:<14} {page['requests']:>9} {page['failures']:>9} {page['p50_ms'] or 0:>8.0f} "
                      f"{page['p95_ms'] or 0:>8.0f} {page['rps']:>7}")  # fmt: skip
        done = sum(1 for r in streams if r.error is None and r.result_ns is not None)
        print()
        print(f"Generations: {done} completed, {len(stream_errors)} failed; chunk overhead p50 "
              f"{analysed['every']['p50']:.2f} ms, p90 {analysed['every']['p90']:.2f} ms; set-up p50 "
              f"{analysed['setup']['p50']:.1f} ms")  # fmt: skip
        for message in sorted(set(stream_errors))[:5]:
            print(f"  {stream_errors.count(message)} x {message}")
        for message in failures[:5]:
            print(f"  page failure: {message}")
        print(f"CPU (100% = one core): {', '.join(f'{k} {v}%' for k, v in cpu.items())}")
        page_failures = sum(p["failures"] for name, p in pages.items() if name != "Aggregated")
        worst_p95 = max((p["p95_ms"] or 0) for name, p in pages.items() if name != "Aggregated")
        checks = [
            ("no failed page", page_failures, page_failures == 0),
            ("no failed generation", len(stream_errors), not stream_errors and done > 0),
            ("every page p95 <= 1 s", worst_p95, worst_p95 <= PAGE_P95_TARGET_MS),
        ]
        print()
        print("Targets:")
        for label, value, passed in checks:
            print(f"  {'pass  ' if passed else 'MISSED'}  {label:<28} {value}")
        out = {
            "mode": "services" if services else "embedded",
            "members": args.members,
            "streamers": args.streamers,
            "seconds": seconds,
            "servers": args.servers,
            "pages": {name: page for name, page in pages.items()},
            "generations_completed": done,
            "generation_errors": len(stream_errors),
            "chunk_overhead_p50_ms": S.r3(analysed["every"]["p50"]),
            "chunk_overhead_p90_ms": S.r3(analysed["every"]["p90"]),
            "setup_p50_ms": S.r3(analysed["setup"]["p50"]),
            "cpu_percent": cpu,
            "cpus": os.cpu_count(),
            "missed": [label for label, _, passed in checks if not passed],
            "elapsed_s": round(time.monotonic() - began, 1),
        }
    except BaseException:
        for name, log in logs.items():
            tail = S.log_tail(log)
            if tail.strip():
                print(f"--- {name} log (tail) ---\n{tail}", file=sys.stderr)
        raise
    finally:
        for server in servers:
            S.stop_process(server)
        S.stop_process(provider)
        if world is not None and services:
            with contextlib.suppress(Exception):
                from apps.accounts.models import User

                User.objects.filter(email__startswith="load-", email__endswith="@bench.huntaze.local").delete()
                S.clean_world(world)
        if os.environ.get("REDIS_URL") and os.environ.get("REDIS_KEY_PREFIX", "").startswith("bench-"):
            with contextlib.suppress(Exception):
                delete_redis_keys(os.environ["REDIS_URL"], os.environ["REDIS_KEY_PREFIX"])
        if world is not None:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
        for log in logs.values():
            log.close()
        shutil.rmtree(var_dir, ignore_errors=True)
    if out is not None:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
