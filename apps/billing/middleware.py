"""Per request: a fresh entitlements memo, primed with the member's agency's snapshot (from this
process's copy when the agency's entitlements version matches, else from the cache, at most once
a request; apps/billing/entitlements.py), the plan's gate in front of pages of features the plan lacks (they answer a
"not in your plan" page with the upgrade link, status 403), and the read-only gate: while the
agency is read-only (trial over, payment past due beyond the grace period, canceled) a write to a
page (any method but GET, HEAD, OPTIONS) answers a 403 page saying why and how to fix it.

Stays writable on a read-only agency: billing itself (paying is how it ends), the admin, signing
in and out, switching agency, and a user's own account and security settings. The API is gated
where each operation resolves its membership (apps.accounts.api.api_membership), since an API
token's agency is only known there."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from apps.billing import entitlements

READONLY_EXEMPT_NAMESPACES = frozenset({"billing", "admin"})
# accounts' pages about the user rather than the agency (prefixes of URL names).
READONLY_EXEMPT_ACCOUNT_NAMES = (
    "login", "logout", "signup", "password", "email-verify", "invitation-accept", "agency-create",
    "switch-", "two-factor", "session", "profile", "preferences", "account",
)  # fmt: skip


def _readonly_exempt(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return True
    if match.namespace in READONLY_EXEMPT_NAMESPACES or match.namespace.startswith("admin"):
        return True
    return match.namespace == "accounts" and (match.url_name or "").startswith(READONLY_EXEMPT_ACCOUNT_NAMES)


class EntitlementsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = entitlements.memo_open()
        try:
            response = self.get_response(request)
            if isinstance(response, TemplateResponse) and not response.is_rendered:
                response.render()  # while the memo is open
            return response
        finally:
            entitlements.memo_close(token)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if request.path_info.startswith("/api/"):
            return None
        tenant = getattr(request, "tenant", None)
        membership = tenant.membership if tenant is not None else None
        if membership is None:
            return None
        # The membership came with its agency row (one joined query): its entitlements version
        # lets this process's copy answer without a cache round trip.
        entitlements.snapshot_prime(membership.agency)
        feature = entitlements.request_feature(request)
        try:
            if feature is not None:
                entitlements.require_feature(membership.agency_id, feature)
            if request.method not in entitlements.SAFE_METHODS and not _readonly_exempt(request):
                entitlements.require_writable(membership.agency_id)
        except entitlements.PlanFeatureError as error:
            return TemplateResponse(
                request,
                "billing/not_in_plan.html",
                {"message": error.message, "feature": feature, "upgrade_url": error.extra["upgrade_url"]},
                status=403,
            )
        except entitlements.ReadOnlyError as error:
            return TemplateResponse(
                request,
                "billing/read_only.html",
                {"message": error.message, "reason": error.extra["reason"], "is_owner": membership.role == "owner"},
                status=403,
            )
        return None
