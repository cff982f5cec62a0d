"""Workflows and events (issue 16's Speed section): the workflow engine's overhead per step, the
outbox's dispatch throughput and the end-to-end latency of an event from commit to a client
connected through daphne.

One phase function per metric; each answers a dict that ``main`` merges into the last-line JSON:

- ``phase_step_overhead`` -> ``step_overhead_p50_ms``: runs bench/workflow_steps.py (``--quick``
  passed on) in a child process with this process's original environment: its own database, a
  Redis broker (REDIS_URL, default redis://127.0.0.1:6379/0) and one real ``--pool=solo`` Celery
  worker; a bare ``chain()`` of 20 no-op tasks against a 20-step workflow of no-op steps, runs
  alternating. Per step overhead = engine ms/step - bare chain ms/step, median. Target: 5 ms.

- ``phase_outbox_throughput`` -> ``outbox_events_per_s``: EVENTS events (``--quick``: fewer)
  committed to the outbox with the dispatch on commit off (``EVENTS_DISPATCH_ON_COMMIT=sweep``),
  then ONE dispatcher (``apps.core.outbox.dispatch_batch``, batches of EVENTS_BATCH_SIZE) claims,
  sends them to GROUPS Channels groups (one listening channel in each, as a websocket consumer
  is) and marks them. Timed: the dispatcher's calls only; after each batch the listeners are
  drained (untimed) and every event must have arrived exactly once. Target: 2,000 events/s.
- ``phase_event_latency`` -> ``event_latency_p95_ms``: a daphne process serving the project
  (``huntaze.asgi``), a member's browser-like clients connected to it (the notifications
  websocket ``/ws/notifications/`` and the SSE stream ``/api/v1/events/stream``, with a session
  cookie), and this process calling ``notification_send`` (the real service: a notification row
  and its ``notification.created`` event in one transaction, dispatched on commit) LATENCY_EVENTS
  times, 20 ms apart. Latency: the client's receive time less the wall-clock time taken just
  before the transaction (one machine, one clock). With Redis the websocket path is the metric
  (the channel layer reaches daphne from this process). The embedded default's channel layer is
  in memory, one per process, so an event committed outside daphne reaches its websockets only
  when the daphne process itself commits it; there the SSE stream (which reads the outbox) is
  the measured path, polled every 20 ms (EVENTS_SSE_POLL_SECONDS, set here; 0.5 s by default).
  Target: 50 ms p95.

Prints a table, then one JSON line; exits 1 when a target is missed. Usage:

    python bench/workflows.py [--quick]                                 # embedded (SQLite, in-memory layer)
    REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        python bench/workflows.py [--quick]                             # services
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PG_DATABASE = "bench_workflows"
EVENTS, QUICK_EVENTS = 20_000, 5_000
GROUPS = 50
LATENCY_EVENTS, QUICK_LATENCY_EVENTS = 300, 100
MIN_EVENTS_PER_S = 2_000
MAX_LATENCY_P95_MS = 50.0
MAX_STEP_OVERHEAD_MS = 5.0
STARTUP_TIMEOUT = 60
STAMP = re.compile(r"bench-event (\d+) (\d+)")


def setup(namespace: str) -> str:
    from _support import configure_django

    mode = configure_django(
        ROOT / "var" / "bench-workflows",
        PG_DATABASE,
        {
            "CELERY_BROKER_URL": "memory://",
            "EVENTS_DISPATCH_ON_COMMIT": "inline",
            "EVENTS_SSE_POLL_SECONDS": "0.02",
            "REDIS_KEY_PREFIX": namespace,
        },
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return mode


def phase_outbox_throughput(quick: bool, namespace: str) -> dict:
    from channels.layers import get_channel_layer
    from django.conf import settings
    from django.db import transaction

    from apps.core import events, outbox
    from apps.core.models import OutboxEvent

    count = QUICK_EVENTS if quick else EVENTS
    layer = get_channel_layer()
    groups = [f"bench.outbox.{index}" for index in range(GROUPS)]
    loop = asyncio.new_event_loop()  # the listeners' loop: a channel's receive queue belongs to one
    # Named channels, one Redis key each: channels_redis keeps all of a process's new_channel()
    # channels in ONE key with one capacity (100), and this listener reads only between batches.
    channels = [f"bench.listener.{namespace}.{index}" for index in range(GROUPS)]
    for group, channel in zip(groups, channels, strict=True):
        loop.run_until_complete(layer.group_add(group, channel))
    OutboxEvent.objects.filter(kind="bench.outbox").delete()  # an interrupted earlier run's
    settings.EVENTS_DISPATCH_ON_COMMIT = "sweep"
    group_of: dict[int, int] = {}
    with transaction.atomic():  # not timed: the publishers' side
        for index in range(count):
            group = index % GROUPS
            event = events.publish("bench.outbox", agency_id=None, payload={"i": index}, groups=[groups[group]])
            group_of[event.pk] = group
    settings.EVENTS_DISPATCH_ON_COMMIT = "inline"

    async def drain(expected: list[int]) -> list[int]:
        """Receive exactly what the batch sent to each listener (no short timeouts: cancelling a
        Redis receive can drop the message it was taking)."""
        per_channel: dict[str, int] = {}
        for event_id in expected:
            channel = channels[group_of[event_id]]
            per_channel[channel] = per_channel.get(channel, 0) + 1
        got = []
        for channel, count in per_channel.items():
            received = 0
            while received < count:
                try:
                    message = await asyncio.wait_for(layer.receive(channel), 10)
                except TimeoutError:
                    break
                # One message per group and batch carries several events (``outbox.batch``).
                items = message["events"] if message["type"] == "outbox.batch" else [message]
                got.extend(item["id"] for item in items)
                received += len(items)
        return got

    received: list[int] = []
    spent = 0.0
    batches = 0
    while True:
        started = time.perf_counter()
        report = outbox.dispatch_batch()
        spent += time.perf_counter() - started
        if not report.claimed:
            break
        batches += 1
        received += loop.run_until_complete(drain(report.dispatched_ids))
    for group, channel in zip(groups, channels, strict=True):
        loop.run_until_complete(layer.group_discard(group, channel))
    loop.close()
    expected = set(OutboxEvent.objects.filter(kind="bench.outbox").values_list("id", flat=True))
    # Deleted at the end of the run, not here: a hole of fresh ids just below the latency phase's
    # events would read as a young gap to the SSE stream, which holds later events behind one.
    return {
        "outbox_events_per_s": round(count / spent) if spent else 0,
        "_outbox": {
            "events": count,
            "groups": GROUPS,
            "batches": batches,
            "batch_size": settings.EVENTS_BATCH_SIZE,
            "dispatch_s": round(spent, 3),
            "received": len(received),
            "lost": len(expected - set(received)),
            "duplicates": len(received) - len(set(received)),
        },
    }


def phase_step_overhead(quick: bool, env: dict[str, str]) -> dict:
    """bench/workflow_steps.py in a child process (a Celery worker must import its workflow)."""
    args = [sys.executable, str(ROOT / "bench" / "workflow_steps.py"), *(["--quick"] if quick else [])]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"step_overhead_p50_ms": None, "_steps": {"error": " | ".join(tail) or f"exit {done.returncode}"}}
    result = json.loads(lines[-1])
    return {"step_overhead_p50_ms": result["step_overhead_p50_ms"], "_steps": result}


def _member_session() -> tuple[int, int, str]:
    from django.conf import settings
    from django.test import Client

    from apps.accounts.middleware import SESSION_AGENCY
    from apps.accounts.models import Agency, Membership, Role, User

    tag = secrets.token_hex(4)
    agency = Agency.objects.create(name=f"Bench events {tag}")
    user = User.objects.create_user(email=f"bench-events-{tag}@bench.huntaze.local", password=None)
    Membership.objects.create(agency=agency, user=user, role=Role.OWNER)
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session[SESSION_AGENCY] = agency.id
    session.save()
    return agency.id, user.id, client.cookies[settings.SESSION_COOKIE_NAME].value


async def _websocket_client(port: int, cookie: str, arrivals: dict, ready: asyncio.Event, done: asyncio.Event):
    import aiohttp

    headers = {"Origin": f"http://127.0.0.1:{port}", "Cookie": f"sessionid={cookie}"}
    url = f"ws://127.0.0.1:{port}/ws/notifications/"
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
        ready.set()
        while not done.is_set():
            try:
                message = await asyncio.wait_for(ws.receive(), 0.2)
            except TimeoutError:
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.time_ns()
            for seq, sent in STAMP.findall(message.data):
                arrivals.setdefault(int(seq), (now - int(sent)) / 1e6)


async def _sse_client(port: int, cookie: str, arrivals: dict, ready: asyncio.Event, done: asyncio.Event):
    import aiohttp

    headers = {"Cookie": f"sessionid={cookie}", "Accept": "text/event-stream"}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    url = f"http://127.0.0.1:{port}/api/v1/events/stream"
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        ready.set()
        while not done.is_set():
            try:
                line = await asyncio.wait_for(response.content.readline(), 0.2)
            except TimeoutError:
                continue
            if not line:
                break
            now = time.time_ns()
            for seq, sent in STAMP.findall(line.decode()):
                arrivals.setdefault(int(seq), (now - int(sent)) / 1e6)


def phase_event_latency(quick: bool, *, websocket: bool) -> dict:
    from _support import percentile
    from asgiref.sync import sync_to_async
    from django.db import connections

    from apps.accounts.models import Agency, Membership
    from apps.notifications.services import notification_send

    count = QUICK_LATENCY_EVENTS if quick else LATENCY_EVENTS
    agency_id, user_id, cookie = _member_session()
    membership = Membership.objects.get(agency_id=agency_id, user_id=user_id)
    connections.close_all()
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tempfile.TemporaryFile()  # noqa: SIM115
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "huntaze.asgi:application"],
        cwd=ROOT,
        env={**os.environ},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ws_arrivals: dict[int, float] = {}
    sse_arrivals: dict[int, float] = {}
    try:
        _wait_for_server(port, server)

        async def run() -> None:
            done = asyncio.Event()
            ws_ready, sse_ready = asyncio.Event(), asyncio.Event()
            clients = [asyncio.create_task(_sse_client(port, cookie, sse_arrivals, sse_ready, done))]
            if websocket:
                clients.append(asyncio.create_task(_websocket_client(port, cookie, ws_arrivals, ws_ready, done)))
            else:
                ws_ready.set()
            await asyncio.wait_for(asyncio.gather(ws_ready.wait(), sse_ready.wait()), 30)
            await asyncio.sleep(0.5)
            send = sync_to_async(notification_send, thread_sensitive=True)
            for seq in range(count):
                await send(membership=membership, title=f"bench-event {seq} {time.time_ns()}", kind="general")
                await asyncio.sleep(0.02)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and (
                len(sse_arrivals) < count or (websocket and len(ws_arrivals) < count)
            ):
                await asyncio.sleep(0.05)
            done.set()
            await asyncio.gather(*clients, return_exceptions=True)

        asyncio.run(run())
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        try:
            Agency.objects.filter(pk=agency_id).delete()
        except Exception as exc:  # cleanup only: the figures above stand
            print(f"warning: the bench agency {agency_id} was not deleted: {exc}", file=sys.stderr)
    sse = sorted(sse_arrivals.values())
    ws = sorted(ws_arrivals.values())
    measured = ws if websocket else sse
    return {
        "event_latency_p95_ms": round(percentile(measured, 95), 1) if len(measured) == count else float("inf"),
        "_latency": {
            "path": "websocket (/ws/notifications/)" if websocket else "SSE (/api/v1/events/stream, 20 ms poll)",
            "events": count,
            "websocket_received": len(ws),
            "websocket_p50_ms": round(percentile(ws, 50), 1) if ws else None,
            "websocket_p95_ms": round(percentile(ws, 95), 1) if ws else None,
            "sse_received": len(sse),
            "sse_p50_ms": round(percentile(sse, 50), 1) if sse else None,
            "sse_p95_ms": round(percentile(sse, 95), 1) if sse else None,
        },
    }


def _wait_for_server(port: int, server: subprocess.Popen) -> None:
    import urllib.request

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"daphne exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
                return
        except OSError as exc:
            if getattr(exc, "code", None):  # any HTTP answer: the server is up
                return
            time.sleep(0.2)
    raise TimeoutError(f"daphne did not answer on port {port}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events (under 60 s)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    namespace = f"bench-workflows-{uuid.uuid4().hex[:8]}"
    redis_url = os.environ.get("REDIS_URL", "")
    results: dict = phase_step_overhead(args.quick, dict(os.environ))  # before setup() changes it
    mode = ""
    try:
        mode = setup(namespace)
        results.update(phase_outbox_throughput(args.quick, namespace))
        results.update(phase_event_latency(args.quick, websocket=bool(redis_url)))
    finally:
        if mode:  # Django is set up
            from apps.core.models import OutboxEvent

            OutboxEvent.objects.filter(kind="bench.outbox").delete()
        if redis_url:
            from _support import delete_redis_keys

            delete_redis_keys(redis_url, namespace)
    from django.conf import settings

    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    outbox_info, latency, steps = results.pop("_outbox"), results.pop("_latency"), results.pop("_steps")
    print(f"bench/workflows.py: {mode} ({database}, {layer})")
    if results["step_overhead_p50_ms"] is None:
        print(f"  engine overhead per step: not measured ({steps['error']})")
    else:
        print(
            f"  engine overhead per step, p50     {results['step_overhead_p50_ms']:10} ms        "
            f"(target <= {MAX_STEP_OVERHEAD_MS:g}; bare chain {steps['bare_chain_step_p50_ms']} ms/step, "
            f"engine {steps['engine_step_p50_ms']} ms/step, {steps['database']}, Redis broker)"
        )
    print(
        f"  outbox dispatch, one dispatcher   {results['outbox_events_per_s']:10,} events/s  "
        f"(target >= {MIN_EVENTS_PER_S:,}; {outbox_info['events']:,} events to {GROUPS} groups, "
        f"{outbox_info['lost']} lost, {outbox_info['duplicates']} twice)"
    )
    print(
        f"  commit -> client via daphne, p95  {results['event_latency_p95_ms']:10} ms        "
        f"(target <= {MAX_LATENCY_P95_MS:g}; {latency['path']})"
    )
    print(
        f"    websocket p50/p95 {latency['websocket_p50_ms']}/{latency['websocket_p95_ms']} ms "
        f"({latency['websocket_received']}/{latency['events']}); "
        f"SSE p50/p95 {latency['sse_p50_ms']}/{latency['sse_p95_ms']} ms "
        f"({latency['sse_received']}/{latency['events']})"
    )
    failures = []
    overhead = results["step_overhead_p50_ms"]
    if overhead is None or overhead > MAX_STEP_OVERHEAD_MS:
        failures.append(f"engine overhead per step {overhead} ms > {MAX_STEP_OVERHEAD_MS:g} ms")
    if results["outbox_events_per_s"] < MIN_EVENTS_PER_S:
        failures.append(f"outbox dispatch {results['outbox_events_per_s']:,}/s < {MIN_EVENTS_PER_S:,}/s")
    if outbox_info["lost"] or outbox_info["duplicates"]:
        failures.append(f"{outbox_info['lost']} events lost, {outbox_info['duplicates']} received twice")
    if not results["event_latency_p95_ms"] <= MAX_LATENCY_P95_MS:
        failures.append(f"event latency p95 {results['event_latency_p95_ms']} ms > {MAX_LATENCY_P95_MS:g} ms")
    for failure in failures:
        print(f"MISSED  {failure}")
    if not failures:
        print("pass    engine and event targets met")
    out = {
        **results,
        "_meta": {
            "mode": mode,
            "database": database,
            "channel_layer": layer,
            "steps": steps,
            "outbox": outbox_info,
            "latency": latency,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "elapsed_s": round(time.monotonic() - began, 1),
            "ok": not failures,
        },
    }
    print(json.dumps(out))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
