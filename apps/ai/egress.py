"""Where an agency's own provider connection may send its requests, and with them its key.

A member types a base URL (OpenAI-compatible servers) or an Azure endpoint, and the server then
connects there on the agency's behalf. Without a policy that is a server-side request forgery: a
URL naming a loopback, private, link-local or cloud-metadata address reaches services that trust
the server's network position. One policy, applied at three points:

- ``check_url``: the settings form and the credential services, before anything is saved or
  tested: http or https only, no user name or password, and every address the host resolves to
  right now must be allowed.
- ``guarded_http_client``: the HTTP client of every agency provider, at call time. An IP literal
  is checked on each request, a host name on each DNS resolution (aiohttp's resolver, so a name
  that resolved to a public address when saved and to a private one now, DNS rebinding, is
  refused with the address aiohttp would really connect to); redirects are not followed. A row
  edited in the admin or the database, or the setting switched off later, is refused before a
  connection is opened.
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
from typing import Any

import aiohttp
import httpx2
from aiohttp.abc import AbstractResolver, ResolveResult

from apps.core.errors import ApplicationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

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


def check_url(url: str, *, allow_private: bool | None = None) -> None:
    """Refuse (``RefusedURL``) a provider URL the policy does not allow. Resolves a host name with
    the system resolver and checks every address; never opens a connection."""
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


def refusal_in(exc: BaseException | None) -> RefusedURL | None:
    """The policy refusal behind an SDK error, if that is what stopped the call."""
    for _ in range(8):
        if exc is None:
            return None
        if isinstance(exc, RefusedURL):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
