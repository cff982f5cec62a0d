"""What one streamed websocket frame costs daphne's event loop to write: Twisted's own TCP
connection against the one huntaze/asgi.py installs (``_send_at_once``), in one process, paired.

A studio stream is one small frame per token, so this cost is paid thousands of times a second
per server at a hundred streams. For each write the loop then turns once (as it does between two
chunks), and a thread on the client's side of the loopback connection reads everything. Stock
Twisted buffers the frame, asks epoll to watch the socket (a system call), sends on that turn
and un-watches it (another); the installed connection sends at once.

Reported: CPU (``time.thread_time`` of the loop's thread) and wall time per frame, the median
of ``--rounds`` paired rounds that alternate stock and send-at-once, and their ratio. Exits 1
when send-at-once does not cost less CPU than stock. Loopback only. Usage:

    python bench/daphne_writes.py [--quick] [--frames N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FRAME = b"\x81\x3c" + b"x" * 60  # a text frame of 60 bytes: a marker and a word, as a chunk is


def per_frame(transport_class, frames: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per frame written through a server connection of this class."""
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    from tests.loopback import twisted_server_connection

    loop = asyncio.new_event_loop()
    reactor = AsyncioSelectorReactor(loop)
    connection, client = twisted_server_connection(transport_class, reactor)

    def drain() -> None:
        while client.recv(65536):
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    async def one_turn() -> None:
        await asyncio.sleep(0)

    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(frames):
        connection.write(FRAME)
        loop.run_until_complete(one_turn())
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    connection.loseConnection()
    loop.run_until_complete(asyncio.sleep(0.05))
    client.close()
    reader.join(timeout=5)
    loop.close()
    return 1e6 * cpu / frames, 1e6 * wall / frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 frames, 5 rounds")
    parser.add_argument("--frames", type=int, help="frames per measurement (default 20,000)")
    parser.add_argument("--rounds", type=int, help="paired rounds (default 7)")
    args = parser.parse_args(argv)
    frames = args.frames or (5_000 if args.quick else 20_000)
    rounds = args.rounds or (5 if args.quick else 7)
    if frames < 100 or not 1 <= rounds <= 100:
        parser.error("--frames must be at least 100 and --rounds 1..100")

    from twisted.internet import tcp

    stock = tcp.Port.transport
    import django
    from _support import configure_django  # bench/ is the script's own folder

    os.environ.pop("DATABASE_URL", None)  # no database is used: SQLite settings under a temporary var/
    var_dir = Path(tempfile.mkdtemp(prefix="hz-bench-writes-"))
    atexit.register(shutil.rmtree, var_dir, True)
    (var_dir / "staticfiles").mkdir()  # WhiteNoise warns about a missing folder; nothing is served
    configure_django(var_dir, "unused")
    django.setup()
    import huntaze.asgi  # noqa: F401  (installs the send-at-once connection)

    at_once = tcp.Port.transport
    if at_once is stock or not getattr(at_once, "sends_at_once", False):
        print("huntaze.asgi did not install its connection class", file=sys.stderr)
        return 1
    per_frame(stock, 500)  # warm-up
    samples: dict[str, list[tuple[float, float]]] = {"stock": [], "at_once": []}
    ratios = []
    for index in range(rounds):
        order = [("stock", stock), ("at_once", at_once)]
        if index % 2:
            order.reverse()
        measured = {name: per_frame(cls, frames) for name, cls in order}
        for name, value in measured.items():
            samples[name].append(value)
        ratios.append(measured["at_once"][0] / measured["stock"][0])

    def median(name: str, which: int) -> float:
        return round(statistics.median(sample[which] for sample in samples[name]), 1)

    print(f"{frames:,} frames x {rounds} paired rounds, Python {platform.python_version()}, {os.cpu_count()} CPU(s)")
    print(f"{'connection':<16}{'CPU µs/frame':>14}{'wall µs/frame':>15}")
    for name, label in (("stock", "Twisted's own"), ("at_once", "send at once")):
        print(f"{label:<16}{median(name, 0):>14}{median(name, 1):>15}")
    ratio = round(statistics.median(ratios), 3)
    passed = ratio < 1
    print(f"{'pass' if passed else 'MISSED'}  send-at-once CPU / stock CPU < 1 (median of paired rounds): {ratio}")
    print(json.dumps({
        "frames": frames, "rounds": rounds,
        "stock_cpu_us_per_frame": median("stock", 0), "at_once_cpu_us_per_frame": median("at_once", 0),
        "stock_wall_us_per_frame": median("stock", 1), "at_once_wall_us_per_frame": median("at_once", 1),
        "cpu_ratio": ratio, "missed": [] if passed else ["cpu_ratio < 1"],
    }))  # fmt: skip
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
