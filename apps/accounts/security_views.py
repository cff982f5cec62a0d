"""Account security pages: the two-step login, two-factor set-up, and the user's active
sessions.

The user's own, not an agency's: reachable by any logged-in user, whatever their memberships.
Thin like the other views: parse, call apps/accounts/two_factor.py or sessions.py, render.

Login with two factor: the password form (``LoginView``, django-axes counting failures) does
not log a user with an authenticator in; it remembers them in the session for
``PENDING_MAX_AGE`` and sends them to the code page, which logs them in (django-otp marks the
session verified). ``PENDING_MAX_FAILURES`` wrong codes send them back to the password.
"""

from __future__ import annotations

import time

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from apps.accounts import sessions, two_factor
from apps.accounts.decorators import member_required
from apps.accounts.forms import LoginForm, SecondFactorForm, TotpConfirmForm, TwoFactorProofForm
from apps.accounts.models import RecoveryCodeDevice, User
from apps.core.errors import ApplicationError, form_add_error

PENDING = "huntaze_two_factor_pending"
PENDING_MAX_AGE = 300
PENDING_MAX_FAILURES = 5


# --- Login -----------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form: LoginForm) -> HttpResponse:
        user = form.get_user()
        if not two_factor.two_factor_enabled(user=user):
            return super().form_valid(form)
        self.request.session[PENDING] = {
            "user": user.pk,
            "backend": user.backend,
            "next": self.get_success_url(),
            "at": time.time(),
            "failures": 0,
        }
        return redirect("accounts:login-code")


def _pending_user(request: HttpRequest) -> tuple[dict, User] | None:
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending["at"] > PENDING_MAX_AGE:
        return None
    user = User.objects.filter(pk=pending["user"], is_active=True).first()
    return (pending, user) if user is not None else None


@never_cache
def login_code(request: HttpRequest) -> HttpResponse:
    found = _pending_user(request)
    if found is None:
        if request.session.pop(PENDING, None) is not None:
            messages.info(request, "Log in again: the step for your code timed out.")
        return redirect("accounts:login")
    pending, user = found
    form = SecondFactorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Checked first so that the first wrong code reads "not right", not "wait".
        throttled = two_factor.second_factor_throttled(user=user)
        device = None if throttled else two_factor.second_factor_verify(user=user, code=form.cleaned_data["code"])
        if device is not None:
            del request.session[PENDING]
            user.otp_device = device  # django_otp's user_logged_in receiver marks the session verified
            login(request, user, backend=pending["backend"])
            if isinstance(device, RecoveryCodeDevice):
                left = two_factor.recovery_codes_left(user=user)
                messages.warning(request, f"You used a recovery code; {left} left. Make new ones in Settings.")
            return redirect(_safe_next(request, pending["next"]) or "core:dashboard")
        pending["failures"] += 1
        request.session[PENDING] = pending
        if pending["failures"] >= PENDING_MAX_FAILURES:
            del request.session[PENDING]
            messages.error(request, "Too many wrong codes. Log in again.")
            return redirect("accounts:login")
        if throttled:
            form.add_error("code", "Too many wrong codes in a row. Wait a few seconds, then try again.")
        else:
            form.add_error("code", "That code is not right.")
    return render(request, "accounts/login_code.html", {"form": form})


def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """Replaces the Django admin's own login form, which would take a password alone: staff sign
    in through ``LoginView`` (second factor, lockout) and come back."""
    next_url = _safe_next(request, request.GET.get("next", "")) or reverse("admin:index")
    if request.user.is_authenticated:
        if request.user.is_active and request.user.is_staff:
            return redirect(next_url)
        raise PermissionDenied("The admin is for staff.")
    return redirect_to_login(next_url, login_url=reverse("accounts:login"))


# --- Two-factor set-up -----------------------------------------------------------------------


def _safe_next(request: HttpRequest, url: str) -> str:
    """``url`` when it is a path on this site, else "": ``redirect`` takes a bare word ("foo") for
    a view name and fails with a 500, and another host ("//evil.example") is an open redirect."""
    on_site = url.startswith("/") and not url.startswith("//")
    return url if on_site and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}) else ""


def _two_factor_page(request: HttpRequest, **context) -> HttpResponse:
    user = request.user
    context["next"] = _safe_next(request, context.get("next", request.GET.get("next", "")))
    context.setdefault("regenerate_form", TwoFactorProofForm(prefix="regenerate"))
    context.setdefault("disable_form", TwoFactorProofForm(prefix="disable"))
    response = render(
        request,
        "accounts/two_factor.html",
        {
            "enabled": two_factor.two_factor_enabled(user=user),
            "allowed": two_factor.two_factor_allowed(user=user),
            "requiring": two_factor.agencies_requiring_two_factor(user=user),
            "codes_left": two_factor.recovery_codes_left(user=user),
            **context,
        },
    )
    response["Cache-Control"] = "no-store"  # may hold the key or recovery codes, shown once
    return response


@login_required
def two_factor_settings(request: HttpRequest) -> HttpResponse:
    return _two_factor_page(request)


@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    user = request.user
    if request.method == "POST" and "code" not in request.POST:
        try:
            two_factor.totp_setup_start(user=user)
        except PermissionDenied as error:
            messages.error(request, str(error))
            return redirect("accounts:two-factor")
        return redirect("accounts:two-factor-setup")
    device = two_factor.totp_setup_pending(user=user)
    if device is None:
        return redirect("accounts:two-factor")
    form = TotpConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = two_factor.totp_setup_confirm(user=user, device=device, code=form.cleaned_data["code"])
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            device.refresh_from_db()
            otp_login(request, device)
            ended = sessions.user_sessions_end_all(user=user, keep=request.session.session_key)
            messages.success(
                request,
                "Two-factor sign-in is on."
                + (f" Your {ended} other session{'s' if ended != 1 else ''} were logged out." if ended else ""),
            )
            return _two_factor_page(request, recovery_codes=codes, next=request.POST.get("next", ""))
    return _two_factor_page(
        request,
        setup=device,
        qr=two_factor.totp_qr_data_uri(device),
        manual_key=two_factor.totp_manual_key(device),
        confirm_form=form,
    )


@login_required
@require_POST
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    form = TwoFactorProofForm(request.POST, prefix="disable")
    if form.is_valid():
        try:
            two_factor.two_factor_disable(user=request.user, proof=form.cleaned_data["proof"])
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            messages.success(request, "Two-factor sign-in is off.")
            return redirect("accounts:two-factor")
    return _two_factor_page(request, disable_form=form)


@login_required
@require_POST
def recovery_codes_regenerate(request: HttpRequest) -> HttpResponse:
    form = TwoFactorProofForm(request.POST, prefix="regenerate")
    if form.is_valid():
        try:
            codes = two_factor.recovery_codes_regenerate(user=request.user, proof=form.cleaned_data["proof"])
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            return _two_factor_page(request, recovery_codes=codes)
    return _two_factor_page(request, regenerate_form=form)


@member_required()
@require_POST
def agency_two_factor(request: HttpRequest) -> HttpResponse:
    required = request.POST.get("require_two_factor") == "on"
    try:
        two_factor.agency_two_factor_require(membership=request.tenant.membership, required=required)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        state = "now required for all members" if required else "optional again"
        messages.success(request, f"Two-factor sign-in is {state}.")
    return redirect("accounts:agency-settings")


# --- Sessions --------------------------------------------------------------------------------


@login_required
def session_list(request: HttpRequest) -> HttpResponse:
    current = request.session.session_key
    rows = [
        {"session": row, "device": sessions.user_agent_label(row.user_agent), "current": row.session_key == current}
        for row in sessions.user_session_list(user=request.user)
    ]
    return render(request, "accounts/sessions.html", {"rows": rows, "others": sum(not r["current"] for r in rows)})


@login_required
@require_POST
def session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    row = sessions.user_session_get_for_user(user=request.user, session_id=session_id)
    if row.session_key == request.session.session_key:
        logout(request)
        return redirect("accounts:login")
    sessions.user_session_end(user=request.user, user_session=row)
    messages.success(request, "That session is logged out.")
    return redirect("accounts:session-list")


@login_required
@require_POST
def session_end_all(request: HttpRequest) -> HttpResponse:
    if request.POST.get("scope") == "all":
        sessions.user_sessions_end_all(user=request.user)
        logout(request)
        return redirect("accounts:login")
    count = sessions.user_sessions_end_all(user=request.user, keep=request.session.session_key)
    messages.success(request, f"Logged out of {count} other session{'' if count == 1 else 's'}.")
    return redirect("accounts:session-list")
