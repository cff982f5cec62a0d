"""Time from `make run` on a fresh clone to the first page, and to the logged-in dashboard.

Clones this repository (committed HEAD) into a temporary directory, runs `make run` there on a
free port, and measures wall-clock seconds until the login page answers 200 and until the demo
owner's dashboard renders. Then it presses Ctrl-C (SIGINT) and checks that web, worker and beat
all stop. Usage:

    python bench/first_page.py            # pip's download cache as it is on this machine
    python bench/first_page.py --cold     # PIP_NO_CACHE_DIR=1: every wheel downloaded again

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_EMAIL = "owner@demo.huntaze.local"
DEMO_PASSWORD = "huntaze-demo-2026"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


def log_in_and_open_dashboard(base: str) -> None:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": DEMO_EMAIL, "password": DEMO_PASSWORD})
    request = urllib.request.Request(base + "/accounts/login/", data=data.encode(), headers={"Referer": base + "/"})
    dashboard = opener.open(request).read().decode()
    if "Velvet Room Agency" not in dashboard:
        raise RuntimeError("the demo dashboard did not render after logging in")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="disable pip's cache (downloads every wheel)")
    parser.add_argument("--quick", action="store_true", help="accepted for `make bench`; the run is already short")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="huntaze-fresh-") as tmp:
        clone = Path(tmp) / "huntaze"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV", "DEBUG"}}
        env["HUNTAZE_PORT"] = str(port)
        if args.cold:
            env["PIP_NO_CACHE_DIR"] = "1"
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        log = open(Path(tmp) / "make-run.log", "w")  # noqa: SIM115 (closed below, after the process)
        process = subprocess.Popen(
            ["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_for(base + "/accounts/login/", started + args.timeout)
            first_page = time.monotonic() - started
            log_in_and_open_dashboard(base)
            dashboard = time.monotonic() - started
        finally:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
            try:
                process.wait(timeout=30)
                stopped_cleanly = True
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                stopped_cleanly = False
            log.close()
        leftovers = subprocess.run(["pgrep", "-f", str(clone)], capture_output=True, text=True).stdout.split()
        result = {
            "pip_cache": "cold" if args.cold else "warm",
            "fresh_clone_to_login_page_s": round(first_page, 1),
            "fresh_clone_to_dashboard_s": round(dashboard, 1),
            "ctrl_c_stops_all": stopped_cleanly and not leftovers,
        }
        print(f"make run on a fresh clone: login page after {first_page:.1f}s, dashboard after {dashboard:.1f}s")
        print(f"Ctrl-C stopped web, worker and beat: {result['ctrl_c_stops_all']}")
        print(json.dumps(result))
        sys.exit(0 if result["ctrl_c_stops_all"] else 1)


if __name__ == "__main__":
    main()
