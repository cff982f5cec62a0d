"""Where an agency's own provider connection may send its requests, and with them its key.

A member types a base URL (OpenAI-compatible servers) or an Azure endpoint, and the server then
connects there on the agency's behalf. Without a policy that is a server-side request forgery: a
URL naming a loopback, private, link-local or cloud-metadata address reaches services that trust
the server's network position. One policy, applied at these points:

- ``check_url``: the settings form and the credential services, before anything is saved or
  tested: http or https only, no user name or password, and every address the host resolves to
  right now must be allowed.
- ``guarded_http_client``: the HTTP client of every agency provider, at call time. An IP literal
  is checked on each request, a host name on each DNS resolution (aiohttp's resolver, so a name
  that resolved to a public address when saved and to a private one now, DNS rebinding, is
  refused with the address aiohttp would really connect to); redirects are not followed. A row
  edited in the admin or the database, or the setting switched off later, is refused before a
  connection is opened.
- ``guarded_session``: a ``requests`` session for the synchronous callers of URLs members type
  (CRM webhooks, publishing's media downloads). Each new connection resolves the host
  once, checks every address with the caller's rule, and connects to exactly the addresses it
  checked; the TLS name (SNI, certificate) and the Host header stay the host name. So a name
  that answers a public address to a check and a private one to the connection (DNS rebinding)
  gets nowhere: there is no second answer. Callers run ``check_url(..., resolve=False)`` first
  for the scheme and credentials, and leave the addresses to the connection.
- ``guarded_sync_client``: the same for ``httpx`` (monitoring's alert webhooks, and the
  ``openai`` SDK's synchronous client of agency moderation): one resolution per connection,
  every address checked (``checked_addresses``, shared with ``guarded_session``), the connection
  made to a checked address; and a deadline per call, which every read and write of the call's
  connection obeys, so a server dripping its answer cannot hold the caller past its timeout.
- ``address_refusal``: the rule itself, for one address.

Loopback, private, shared (CGNAT), link-local, reserved and unspecified addresses are refused
unless ``AI_ALLOW_PRIVATE_BASE_URLS`` is on (the default only in the embedded default, so a local
Ollama works); cloud metadata and multicast addresses are refused always, since no model server
lives there. IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by that
address too.

Deliberately not covered: the platform's own providers, configured by the operator through the
environment (OPENAI_BASE_URL and the like), which are trusted as the rest of the configuration is.
Agency providers do not use an HTTP(S)_PROXY from the environment: the proxy would resolve names
past the check.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import aiohttp
import httpcore2
import httpx2
import requests
from aiohttp.abc import AbstractResolver, ResolveResult
from httpcore2._backends.sync import SyncBackend
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

from apps.core.errors import ApplicationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Raises (the caller's own error, or RefusedURL) when a connection to the address is not allowed.
AddressCheck = Callable[[IPAddress], None]

SCHEMES = frozenset({"http", "https"})
# Instance metadata services (AWS, GCP and Azure share 169.254.169.254; AWS ECS task metadata;
# AWS over IPv6; Alibaba Cloud). They hand out cloud credentials to whoever asks from inside.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "169.254.170.23", "fd00:ec2::254", "100.100.100.200")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
PRIVATE_MESSAGE = "This URL points to a private or internal network address, which this server does not connect to."


class RefusedURL(ApplicationError):
    """A provider URL the policy does not allow. Its message is ours, safe to show to the member."""


def private_allowed() -> bool:
    from django.conf import settings

    return bool(settings.AI_ALLOW_PRIVATE_BASE_URLS)


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and may be routed to."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    carried = [address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None]
    if address in NAT64:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [inner for inner in carried if inner is not None]


def address_refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a connection to ``address`` is refused, or None when it is allowed."""
    address = ipaddress.ip_address(str(address).split("%", 1)[0])  # a link-local zone changes nothing
    for inner in _embedded_ipv4(address):
        reason = address_refusal(inner, allow_private=allow_private)
        if reason:
            return reason
    if address in METADATA_ADDRESSES:
        return "This URL points to a cloud metadata address, which this server never connects to."
    if address.is_multicast:
        return "This URL points to a multicast address, which is not a server."
    if not address.is_global and not allow_private:
        return PRIVATE_MESSAGE
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _refuse_address(address: IPAddress, *, allow_private: bool) -> None:
    reason = address_refusal(address, allow_private=allow_private)
    if reason:
        raise RefusedURL(reason)


def check_url(url: str, *, allow_private: bool | None = None, resolve: bool = True) -> None:
    """Refuse (``RefusedURL``) a provider URL the policy does not allow. Resolves a host name with
    the system resolver and checks every address; never opens a connection. ``resolve=False``
    checks all but a host name's addresses: for a request about to go through
    ``guarded_session``, which checks the addresses it really connects to."""
    if allow_private is None:
        allow_private = private_allowed()
    try:
        parsed = httpx2.URL(url)  # the parser the SDKs build their requests with
    except (httpx2.InvalidURL, TypeError, ValueError):
        raise RefusedURL("Enter a valid URL.") from None
    if parsed.scheme not in SCHEMES:
        raise RefusedURL("The URL must start with http or https.")
    if parsed.userinfo:
        raise RefusedURL("Remove the user name or password from the URL; put the key in the API key field.")
    host = parsed.host
    if not host:
        raise RefusedURL("The URL needs a host name.")
    literal = _literal(host)
    if literal is not None:
        _refuse_address(literal, allow_private=allow_private)
        return
    if not resolve:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise RefusedURL("The host name in this URL could not be resolved.") from None
    for info in infos:
        _refuse_address(ipaddress.ip_address(info[4][0]), allow_private=allow_private)


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded (system) resolver, refusing any answer the policy does not allow."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allow_private = private_allowed()
        for result in results:
            _refuse_address(ipaddress.ip_address(result["host"]), allow_private=allow_private)
        return results

    async def close(self) -> None:
        await self._inner.close()


def _guarded_transport_class() -> type:
    # The SDKs' own aiohttp transport (openai's vendored httpx-aiohttp; anthropic ships the same
    # code), so agency providers keep the streaming speed of the platform's (docs/benchmarks.md).
    from openai._vendor.httpx_aiohttp.transport import AiohttpTransport

    class GuardedTransport(AiohttpTransport):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.client = self._session

        def _session(self) -> aiohttp.ClientSession:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(),
                ssl=self.ssl_context,
                keepalive_timeout=self.limits.keepalive_expiry,
                limit=self.limits.max_connections or 0,
            )
            return aiohttp.ClientSession(connector=connector)

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            # Names are checked by the resolver; aiohttp never resolves a literal, so check it here.
            if request.url.scheme not in SCHEMES:
                raise RefusedURL("The URL must start with http or https.")
            literal = _literal(request.url.host)
            if literal is not None:
                _refuse_address(literal, allow_private=private_allowed())
            return await super().handle_async_request(request)

    return GuardedTransport


def guarded_http_client() -> httpx2.AsyncClient:
    """An HTTP client for the SDKs (their defaults for limits and timeouts) that connects only
    where the policy allows and follows no redirect: a redirect would carry the key's request to
    an address nobody checked. It ignores HTTP(S)_PROXY: a proxy would resolve names past the
    check."""
    limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)
    return httpx2.AsyncClient(
        transport=_guarded_transport_class()(limits=limits), limits=limits,
        timeout=httpx2.Timeout(timeout=600, connect=5.0), follow_redirects=False, trust_env=False,
    )  # fmt: skip


# -- synchronous clients: one resolution, checked, and connected to --------------------------------


def policy_check(allow_private: Callable[[], bool] = private_allowed) -> AddressCheck:
    """The policy as an ``AddressCheck``; ``allow_private`` is asked at each connection, so a
    setting switched off later applies to the next one."""

    def check(address: IPAddress) -> None:
        _refuse_address(address, allow_private=bool(allow_private()))

    return check


def checked_addresses(host: str, port: int, check: AddressCheck) -> list[str]:
    """Resolve ``host`` once (``socket.gaierror`` when it cannot be) and answer its addresses in
    the resolver's order, after ``check`` has passed every one of them: one refused address
    refuses the host, as ``check_url`` does."""
    infos = socket.getaddrinfo(host.strip("[]"), port, allowed_gai_family(), socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        check(ipaddress.ip_address(address.split("%", 1)[0]))
        if address not in addresses:
            addresses.append(address)
    return addresses


class _GuardedConnectionMixin:
    """urllib3's socket opening, with the host resolved and checked here and the socket connected
    to the checked address; everything after (TLS with the host name, the request) is urllib3's."""

    address_check: AddressCheck  # set on the class built for each session

    def _new_conn(self) -> socket.socket:
        try:
            addresses = checked_addresses(self._dns_host, self.port, type(self).address_check)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        error: OSError | None = None
        for address in addresses:  # an IP literal: create_connection asks no DNS server
            try:
                sock = create_connection(
                    (address, self.port), self.timeout, source_address=self.source_address,
                    socket_options=self.socket_options,
                )  # fmt: skip
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, check: AddressCheck, **kwargs: Any) -> None:
        self._check = check
        super().__init__(**kwargs)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        guarded = {"address_check": staticmethod(self._check)}
        http = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), guarded)
        https = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), guarded)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise RefusedURL("Requests to outside URLs do not go through a proxy: it would resolve names past the check.")


def guarded_session(check: AddressCheck) -> requests.Session:
    """A ``requests`` session whose every new connection resolves the host once, passes each
    address to ``check`` (which raises to refuse: ``RefusedURL`` or the caller's own error, raised
    out of ``session.request`` before any connection is opened) and connects only to the checked
    addresses. It takes no proxy from the environment; callers pass ``allow_redirects=False``
    (a redirect may name another host; it would be checked too, but the caller's rules, such as
    https only, would not)."""
    session = requests.Session()
    session.trust_env = False
    adapter = _GuardedAdapter(check)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def refusal_in(exc: BaseException | None) -> RefusedURL | None:
    """The policy refusal behind an SDK error, if that is what stopped the call."""
    for _ in range(8):
        if exc is None:
            return None
        if isinstance(exc, RefusedURL):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


# -- synchronous httpx clients: the same, with a deadline per call ---------------------------------

# When the call now running in this context must be over (``time.monotonic``), or None. Set by
# ``_DeadlineClient.send`` around each call, read by every connection the call uses: a pooled
# connection serves call after call, each with its own deadline.
_call_deadline: ContextVar[float | None] = ContextVar("egress_call_deadline", default=None)


def _time_left(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of the call's deadline; ``error`` once nothing is."""
    deadline = _call_deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the call's deadline passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore2.NetworkStream):
    """A connection whose every read, write and TLS handshake ends by the deadline of the call it
    serves, however many of them the answer takes: a per-read timeout alone lets a server that
    drips one byte at a time hold the call for ever."""

    def __init__(self, stream: httpcore2.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore2.NetworkStream:  # fmt: skip
        timeout = _time_left(timeout, httpcore2.ConnectTimeout)
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class GuardedBackend(SyncBackend):
    """httpcore's socket backend, with the host resolved once and checked here
    (``checked_addresses``, the ``requests`` sessions' path too) and the socket connected to a
    checked address, in the resolver's order; TLS (SNI, certificate) keeps the host name, which
    httpcore passes to ``start_tls`` itself."""

    def __init__(self, check: AddressCheck) -> None:
        self._check = check

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore2.NetworkStream:  # fmt: skip
        try:
            addresses = checked_addresses(host, port, self._check)
        except (OSError, UnicodeError) as exc:
            raise httpcore2.ConnectError(f"could not resolve {host}: {exc}") from None
        error: httpcore2.ConnectError | None = None
        for address in addresses:  # an IP literal: create_connection asks no DNS server
            try:
                stream = super().connect_tcp(
                    address, port, _time_left(timeout, httpcore2.ConnectTimeout), local_address, socket_options
                )
            except httpcore2.ConnectTimeout:
                raise
            except httpcore2.ConnectError as exc:
                error = exc
                continue
            return DeadlineStream(stream)
        raise error or httpcore2.ConnectError(f"{host} has no address")


class _DeadlineClient(httpx2.Client):
    def __init__(self, *, call_seconds: float, **kwargs: Any) -> None:
        self._call_seconds = call_seconds
        super().__init__(**kwargs)

    def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        deadline = time.monotonic() + self._call_seconds
        outer = _call_deadline.get()
        token = _call_deadline.set(deadline if outer is None else min(outer, deadline))
        try:
            return super().send(request, **kwargs)
        finally:
            _call_deadline.reset(token)


def guarded_sync_client(check: AddressCheck, *, timeout: float) -> httpx2.Client:
    """An httpx client (the ``openai`` SDK's ``http_client`` too) whose every new connection
    resolves the host once, passes each address to ``check`` (which raises to refuse:
    ``RefusedURL`` or the caller's own error, raised out of the request before any connection is
    opened) and connects only to a checked address. It follows no redirect (it would lead to an
    address the caller's rules never saw) and ignores HTTP(S)_PROXY (a proxy resolves names
    itself).

    ``timeout`` bounds each read, write and connection, and each call as a whole: connecting,
    sending, and reading the answer's headers and (unless streamed) its body all end ``timeout``
    seconds after the call began. The deadline is the call's, not the client's, so a client kept
    for its connections (apps/ai/moderation.py) gives every call the full time; a body read after
    ``stream=True`` has returned is bounded per read only."""
    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's defaults
    transport = httpx2.HTTPTransport(trust_env=False, limits=limits)
    # The transport's own pool, with our backend: httpx has no argument for a network backend.
    transport._pool = httpcore2.ConnectionPool(
        ssl_context=transport._pool._ssl_context, max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(check),
    )  # fmt: skip
    return _DeadlineClient(
        call_seconds=timeout, transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )
