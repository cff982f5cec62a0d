"""Puts the request's tenancy on ``request.tenant``: current membership, agency and creator;
records a logged-in session's activity for the sessions page (apps/accounts/sessions.py); and
holds members of an agency that requires two-factor sign-in at its set-up page until they use it.

Everything is resolved lazily, so static files and anonymous pages cost no queries. The agency
and creator chosen by the switcher live in the session and are re-checked on every request: a
member removed from an agency, or a chatter unassigned from a creator, loses access at once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import urlencode

from apps.accounts.models import Creator, Membership
from apps.accounts.selectors import creator_list, membership_current, membership_list_for_user
from apps.accounts.services import api_token_authenticate
from apps.accounts.sessions import user_session_touch
from apps.core.timezones import zone_or_utc

SESSION_AGENCY = "huntaze_agency_id"
SESSION_CREATOR = "huntaze_creator_id"


class Tenant:
    def __init__(self, request: HttpRequest) -> None:
        self._request = request

    @cached_property
    def membership(self) -> Membership | None:
        user = self._request.user
        if not user.is_authenticated:
            return None
        return membership_current(user=user, agency_id=self._request.session.get(SESSION_AGENCY))

    @cached_property
    def memberships(self) -> list[Membership]:
        user = self._request.user
        return list(membership_list_for_user(user=user)) if user.is_authenticated else []

    @property
    def agency(self):
        return self.membership.agency if self.membership else None

    @cached_property
    def creators(self) -> list[Creator]:
        if self.membership is None:
            return []
        return list(creator_list(membership=self.membership))

    @cached_property
    def creator(self) -> Creator | None:
        chosen = self._request.session.get(SESSION_CREATOR)
        for creator in self.creators:
            if creator.pk == chosen:
                return creator
        return self.creators[0] if self.creators else None


class TenancyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.tenant = Tenant(request)
        return self.get_response(request)


class SessionActivityMiddleware:
    """After the view (so the login request itself counts), note that the user's session was
    used: a write at most every few minutes per session, nothing on other requests."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            user_session_touch(
                user=user,
                session=request.session,
                ip_address=request.META.get("REMOTE_ADDR"),
                user_agent=request.headers.get("User-Agent", ""),
            )
        return response


class TwoFactorRequiredMiddleware:
    """A member whose current agency requires two factor, in a session not verified with a
    second factor, gets the two-factor page instead of the agency's pages (and a 403 from the
    API with session auth). The pages needed to comply or leave stay open: two-factor set-up,
    log out, sessions, switching agency. A live API token is its own credential and passes; an
    Authorization header that does not authenticate does not."""

    OPEN_PREFIXES = ("/settings/two-factor/", "/settings/sessions/", "/accounts/", "/switch/agency/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._held(request):
            if request.path_info.startswith("/api/"):
                return JsonResponse(
                    {
                        "error": {
                            "code": "two_factor_required",
                            "message": "This agency requires two-factor sign-in: turn it on in Settings.",
                            "request_id": getattr(request, "request_id", ""),
                        }
                    },
                    status=403,
                )
            url = reverse("accounts:two-factor")
            if request.method == "GET":
                url += "?" + urlencode({"next": request.get_full_path()})
            return redirect(url)
        return self.get_response(request)

    def _held(self, request: HttpRequest) -> bool:
        user = request.user
        if not user.is_authenticated or request.path_info.startswith(self.OPEN_PREFIXES):
            return False
        membership = request.tenant.membership
        if membership is None or not membership.agency.require_two_factor or user.is_verified():
            return False
        # A live API token is its own credential. Any other Authorization header is not: the API
        # would fall back to this session, which is the one held.
        return not (request.path_info.startswith("/api/") and self._live_api_token(request))

    @staticmethod
    def _live_api_token(request: HttpRequest) -> bool:
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and api_token_authenticate(raw.strip()) is not None


class UserPreferencesMiddleware:
    """Activates the signed-in user's time zone (else their current agency's, else TIME_ZONE) and
    language (else LANGUAGE_CODE) for the request, so templates render times and Django's own
    text (form errors, the admin) in them (apps/accounts/profile.py). Costs no query: the user is
    already loaded and the agency is asked for only when the user chose no zone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        zone_name = user.timezone
        if not zone_name:
            tenant = getattr(request, "tenant", None)
            agency = tenant.agency if tenant is not None else None
            zone_name = agency.timezone if agency is not None else ""
        timezone.activate(zone_or_utc(zone_name or settings.TIME_ZONE))
        language = user.language if user.language in dict(settings.LANGUAGES) else ""
        try:
            if language:
                translation.activate(language)
                request.LANGUAGE_CODE = language
            response = self.get_response(request)
            if language:
                response.headers.setdefault("Content-Language", language)
            return response
        finally:
            timezone.deactivate()
            if language:
                translation.deactivate()
