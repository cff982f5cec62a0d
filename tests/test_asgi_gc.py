"""The ASGI module freezes what it imported and built at start (``gc.freeze``), so a full garbage
collection in a daphne walks only what requests made since: before, every full collection paused
the process, every websocket in it, for a quarter of a second or more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import gc, json, time
import huntaze.asgi  # noqa: F401  (what daphne imports)

def pause():
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        gc.collect()
        best = min(best, time.perf_counter() - started)
    return best

frozen = gc.get_freeze_count()
after_start = pause()
gc.unfreeze()
whole_heap = pause()
print(json.dumps({"frozen": frozen, "after_start": after_start, "whole_heap": whole_heap}))
"""


def test_a_full_collection_in_a_server_process_skips_what_the_start_built(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "huntaze.settings", "HUNTAZE_VAR_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=True)  # fmt: skip
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["frozen"] > 100_000  # the frameworks, the SDKs, the URL configuration and templates
    # Same process, same moment: the pause a request-time full collection costs, with the start's
    # objects frozen against all of them walked.
    assert figures["after_start"] < figures["whole_heap"] / 4, figures
