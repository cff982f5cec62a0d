"""A generation's start does not wait behind other work in the event loop's shared thread pool
(apps/studio/consumers.py: the start's thread hop has threads of its own). Under load that pool
holds other generations' completions (a moderation call, the row saved, the result rendered); a
member who pressed Generate waited for all of them before the first word."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async

from tests.conftest import build_world
from tests.studio.test_websocket_permissions import _socket

pytestmark = pytest.mark.usefixtures("builtin")


@pytest.mark.django_db(transaction=True)
async def test_a_start_is_not_queued_behind_the_shared_pools_work():
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=2)
    loop.set_default_executor(pool)  # before any use, so no earlier pool is left behind
    world = await sync_to_async(build_world)("Busy pool")
    communicator = await _socket(world.manager)
    busy = [loop.run_in_executor(None, time.sleep, 1.5) for _ in range(2)]  # the shared pool, all taken
    try:
        sent = time.monotonic()
        await communicator.send_to(
            text_data=json.dumps({"action": "generate", "type": "caption", "creator_id": world.creator.pk})
        )
        first = await communicator.receive_from(timeout=5)
        waited = time.monotonic() - sent
        assert 'id="studio-status"' in first and "Writing" in first, first  # the start's hop is done
        assert waited < 1.0, f"the start waited {waited:.2f} s for the shared pool"
        while "Save to library" not in await communicator.receive_from(timeout=10):
            pass  # the rest (the row, the completion) uses the shared pool, once it frees up
    finally:
        await asyncio.gather(*busy)
        await communicator.disconnect()
