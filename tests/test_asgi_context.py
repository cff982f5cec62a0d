"""The ASGI module's warm-up leaves nothing in the server's own context.

Every connection's task starts from a copy of that context, and asgiref copies each variable in it
back and forth at every ``sync_to_async`` hop (a generation makes several). Building the reverse
table at start used to set a flag in each URL resolver's ``asgiref.local.Local``, 96 variables,
which cost about 36 us a hop in every daphne."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import contextvars, json
import huntaze.asgi  # noqa: F401  (what daphne imports)
from django.urls import get_resolver

context = contextvars.copy_context()
print(json.dumps({
    "locals": sum(1 for variable in context if variable.name == "asgiref.local"),
    "variables": sorted(variable.name for variable in context),
    "reverse_table_built": bool(get_resolver()._populated),
}))
"""


def test_the_server_context_carries_no_local_state_from_the_start(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "huntaze.settings", "HUNTAZE_VAR_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120, check=True)  # fmt: skip
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["reverse_table_built"]  # the warm-up still ran
    assert figures["locals"] == 0, figures["variables"]
    assert len(figures["variables"]) <= 3, figures["variables"]
