"""Per request: a fresh entitlements memo (each agency's snapshot read from the cache at most
once a request), and the plan's gate in front of pages of features the plan lacks (they answer a
"not in your plan" page with the upgrade link, status 403). The API is gated where each
operation resolves its membership (apps.accounts.api.api_membership), since an API token's
agency is only known there."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from apps.billing import entitlements


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
        feature = entitlements.request_feature(request)
        tenant = getattr(request, "tenant", None)
        membership = tenant.membership if tenant is not None else None
        if feature is None or membership is None:
            return None
        try:
            entitlements.require_feature(membership.agency_id, feature)
        except entitlements.PlanFeatureError as error:
            return TemplateResponse(
                request,
                "billing/not_in_plan.html",
                {"message": error.message, "feature": feature, "upgrade_url": error.extra["upgrade_url"]},
                status=403,
            )
        return None
