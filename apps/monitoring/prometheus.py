"""``GET /metrics``: the Prometheus exposition of every process's metrics (docs/metrics-sinks.md).

The PrometheusSink (apps/monitoring/sink_prometheus.py) in each daphne and Celery process writes its
samples to files in PROMETHEUS_MULTIPROC_DIR; this view merges them with prometheus-client's
MultiProcessCollector, so one scrape of any web process sees the whole deployment on that host.

Who may read it: a caller with ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant
time), or a client whose address is in METRICS_ALLOWED_NETWORKS (loopback by default). A request
that came through a proxy (it carries X-Forwarded-For or Forwarded) is never let in by address:
behind a reverse proxy on the same host every visitor would look like 127.0.0.1. Everyone else
gets 403; when the Prometheus sink is not configured the URL answers 404.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils.module_loading import import_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from apps.monitoring.sink_prometheus import PrometheusSink

PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def prometheus_configured() -> bool:
    """Whether METRICS_SINKS holds the Prometheus sink (under this module's path or a re-export)."""
    return any(import_string(path) is PrometheusSink for path in settings.METRICS_SINKS)


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(network) for network in allowed)


def token_ok(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def address_ok(request: HttpRequest) -> bool:
    if any(header in request.META for header in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


def exposition() -> tuple[bytes, str]:
    """Every process's samples, merged, in the text format Prometheus scrapes."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(settings.PROMETHEUS_MULTIPROC_DIR))
    return generate_latest(registry), CONTENT_TYPE_LATEST


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not prometheus_configured():
        raise Http404("The Prometheus metrics sink is not configured.")
    if not (token_ok(request) or address_ok(request)):
        return HttpResponseForbidden("Metrics need a bearer token or an allowed network.", content_type="text/plain")
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)
