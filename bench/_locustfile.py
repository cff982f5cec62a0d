"""The members of bench/load.py's load test, for locust (not a benchmark by itself: the leading
underscore keeps ``make bench`` from running it).

Each simulated member has a logged-in session of its own (written by bench/load.py into the file
named by LOAD_SESSIONS, with the daphne ports in LOAD_PORTS) and browses as a member does: the
dashboard, the studio and the idea board, a second or two apart. Requests are named by page, so
locust's statistics are per page.
"""

from __future__ import annotations

import itertools
import json
import os

from locust import HttpUser, between, task

_SESSIONS = json.loads(open(os.environ["LOAD_SESSIONS"]).read())  # noqa: SIM115 (read once at import)
_PORTS = [int(port) for port in os.environ["LOAD_PORTS"].split(",")]
_NEXT = itertools.count()


class Member(HttpUser):
    wait_time = between(1.0, 2.0)

    def on_start(self) -> None:
        index = next(_NEXT)
        port = _PORTS[index % len(_PORTS)]  # spread over the daphne processes, as a load balancer would
        self.client.base_url = f"http://127.0.0.1:{port}"
        self.client.cookies.set("sessionid", _SESSIONS[index % len(_SESSIONS)])

    def _get(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, allow_redirects=False, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code} {response.headers.get('location', '')}".strip())

    @task(3)
    def dashboard(self) -> None:
        self._get("/", "dashboard")

    @task(2)
    def studio(self) -> None:
        self._get("/studio/", "studio")

    @task(2)
    def idea_board(self) -> None:
        self._get("/studio/ideas/", "idea board")
