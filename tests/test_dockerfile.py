"""The container image's Python layer builds: the Dockerfile's collectstatic step, run as written.

There is no Docker engine in CI, so this test reads the Dockerfile itself, takes its ENV lines and
the variables of the RUN step that calls collectstatic, and runs that command with exactly that
environment (plus PATH, and a private var/ directory instead of /app/var). A settings change that
the build-time placeholders no longer satisfy fails here instead of in `docker compose build`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def _instructions(text: str) -> list[tuple[str, str]]:
    """Dockerfile instructions as (keyword, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        found.append((keyword.upper(), arguments.strip()))
    return found


def _collectstatic_step() -> tuple[dict[str, str], list[str]]:
    image_env: dict[str, str] = {}
    for keyword, arguments in _instructions((ROOT / "Dockerfile").read_text()):
        if keyword == "ENV":
            for token in shlex.split(arguments):
                name, _, value = token.partition("=")
                image_env[name] = value
        elif keyword == "RUN" and "collectstatic" in arguments:
            command = arguments.split("&&")[0]
            tokens = shlex.split(command)
            step_env = dict(token.split("=", 1) for token in tokens if ASSIGNMENT.match(token))
            argv = [token for token in tokens if not ASSIGNMENT.match(token)]
            return {**image_env, **step_env}, argv
    raise AssertionError("the Dockerfile has no RUN step calling collectstatic")


def test_the_dockerfile_collectstatic_step_succeeds_with_its_own_environment(tmp_path):
    env, argv = _collectstatic_step()
    assert env["DEBUG"] == "false", "the image collects static files the way production serves them"
    assert argv[:3] == ["python", "manage.py", "collectstatic"]
    env["HUNTAZE_VAR_DIR"] = str(tmp_path)  # the image's /app/var does not exist here
    env["PATH"] = os.environ["PATH"]

    result = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr[-2000:]
    collected = tmp_path / "staticfiles"
    assert (collected / "admin" / "css" / "base.css").exists()
    assert any(collected.rglob("htmx*.js")), "the vendored htmx is part of the image's static files"
