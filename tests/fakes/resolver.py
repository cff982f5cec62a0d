"""A DNS resolver for test host names, and a guard that keeps every connection on loopback.

``FakeResolver`` answers names ending in ``.test`` (and any name given to ``answer``) from a
script: each lookup takes the next answer, the last one repeats, so "public when checked, loopback
when connected" (DNS rebinding) is two answers. Other names go to the system resolver. Every
scripted lookup is recorded in ``lookups``, so a test can count how often a name was resolved.

``loopback_only`` fails the test on any socket connection to an address that is not loopback:
a scripted public answer may be checked, never connected to. ``resolver`` adds one exception:
a connection to an address in ``resolver.unreachable`` is recorded in ``resolver.connects`` and
refused (ECONNREFUSED) before the system call, so a test sees where a client aimed without any
packet leaving the machine.

Both replace functions of the standard library's ``socket`` module (pytest's monkeypatch), the
layer below every HTTP client: the project's own code runs unpatched.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterator

import pytest

_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect


class FakeResolver:
    def __init__(self) -> None:
        self.script: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        self.unreachable: set[str] = set()
        self.connects: list[str] = []

    def answer(self, host: str, *answers: str | list[str]) -> None:
        """Each argument answers one lookup (an address, or a list of them); the last repeats."""
        self.script[host] = [[item] if isinstance(item, str) else list(item) for item in answers]

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.script:
            if isinstance(name, str) and name.endswith(".test"):
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        self.lookups.append(name)
        answers = self.script[name]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        port = int(port or 0)
        infos = []
        for address in addresses:
            if ipaddress.ip_address(address).version == 6:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return infos


def _guard(monkeypatch, fake: FakeResolver | None) -> None:
    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0].split("%", 1)[0]
            if fake is not None and host in fake.unreachable:
                fake.connects.append(host)
                raise ConnectionRefusedError(errno.ECONNREFUSED, "refused by the test (never sent)")
            if not ipaddress.ip_address(host).is_loopback:
                raise AssertionError(f"a test connected to a non-loopback address: {address!r}")
        return _real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def loopback_only(monkeypatch) -> None:
    _guard(monkeypatch, None)


@pytest.fixture
def resolver(monkeypatch) -> Iterator[FakeResolver]:
    fake = FakeResolver()
    _guard(monkeypatch, fake)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    yield fake
