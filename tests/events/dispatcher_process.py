"""A dispatcher process for tests/events/test_dispatcher_crash.py: ``python -m tests.events.dispatcher_process``.

It runs the real dispatcher (apps/core/outbox.py) until no event is left to dispatch, with two
consumers writing what they receive to EVENTS_CONSUMER_LOG: a websocket-style channel in the
group the test's events go to (``group <id>``), and an in-process subscriber (``subscriber <id>``).
HUNTAZE_OUTBOX_PAUSE_AFTER_CLAIM makes it stop between a claim and the fan-out, to be killed there.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import django

GROUP = "test.crash"


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huntaze.settings")
    django.setup()
    from channels.layers import get_channel_layer

    from apps.core import events, outbox
    from apps.core.models import OutboxEvent

    log = open(os.environ["EVENTS_CONSUMER_LOG"], "a", buffering=1)  # noqa: SIM115 (open for the process)
    events.subscribe("test.", lambda event: log.write(f"subscriber {event.pk}\n"))
    layer = get_channel_layer()
    loop = asyncio.new_event_loop()  # the channel's receive queue belongs to one loop
    channel = loop.run_until_complete(layer.new_channel())
    loop.run_until_complete(layer.group_add(GROUP, channel))

    async def drain() -> None:
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), 0.2)
            except TimeoutError:
                return
            for item in message["events"] if message["type"] == "outbox.batch" else [message]:
                log.write(f"group {item['id']}\n")

    print("dispatcher ready", flush=True)
    deadline = time.monotonic() + float(os.environ.get("DISPATCHER_SECONDS", "60"))
    while time.monotonic() < deadline:
        report = outbox.dispatch_pending()
        loop.run_until_complete(drain())
        if report.claimed:
            print(f"dispatched {report.dispatched} of {report.claimed}", flush=True)
        if not OutboxEvent.objects.filter(dispatched_at__isnull=True).exists():
            return 0
        time.sleep(0.2)
    return 1


if __name__ == "__main__":
    sys.exit(main())
