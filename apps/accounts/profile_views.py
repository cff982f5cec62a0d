"""Profile pages: name and preferences, avatar, export my data, delete my account.

The user's own, not an agency's: every view acts on ``request.user`` and takes no id, so there
is no other user's object to reach. Thin like the other views: parse, call
apps/accounts/profile.py, data_export.py or account_deletion.py, render.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from apps.accounts import account_deletion, data_export, profile, two_factor
from apps.accounts.forms import AccountDeleteForm, AvatarForm, ProfileForm
from apps.core.errors import ApplicationError, form_add_error


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _profile_page(request: HttpRequest, *, form: ProfileForm | None = None, avatar_form: AvatarForm | None = None):
    user = request.user
    form = form or ProfileForm(
        initial={
            "full_name": user.full_name,
            "timezone": user.timezone,
            "language": user.language,
            "keyboard_shortcuts": user.keyboard_shortcuts,
        }
    )
    context = {
        "form": form,
        "avatar_form": avatar_form or AvatarForm(),
        "export": data_export.data_export_latest(user=user),
        "events": profile.account_event_list(user=user, limit=10),
    }
    status = 400 if (form.is_bound and form.errors) or (avatar_form is not None and avatar_form.errors) else 200
    return render(request, "accounts/profile.html", context, status=status)


@login_required
def profile_edit(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _profile_page(request)
    form = ProfileForm(request.POST)
    if form.is_valid():
        try:
            profile.profile_update(user=request.user, data=form.cleaned_data, ip_address=_ip(request))
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            messages.success(request, "Your profile is saved.")
            return redirect("accounts:profile")
    return _profile_page(request, form=form)


@login_required
@require_POST
def avatar_update(request: HttpRequest) -> HttpResponse:
    if request.POST.get("remove"):
        profile.avatar_remove(user=request.user, ip_address=_ip(request))
        messages.success(request, "Your picture is removed.")
        return redirect("accounts:profile")
    form = AvatarForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            profile.avatar_set(user=request.user, upload=form.cleaned_data["avatar"], ip_address=_ip(request))
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            messages.success(request, "Your picture is saved.")
            return redirect("accounts:profile")
    return _profile_page(request, avatar_form=form)


@login_required
@require_GET
def avatar_image(request: HttpRequest) -> HttpResponse:
    avatar = profile.avatar_get(user=request.user)
    if avatar is None:
        raise Http404("No picture.")
    response = HttpResponse(bytes(avatar.image), content_type=avatar.content_type)
    response["Cache-Control"] = "private, max-age=86400"  # the URL carries ?v=<updated-at>
    response["Content-Disposition"] = "inline"
    return response


# --- Export my data --------------------------------------------------------------------------


@login_required
def export_status(request: HttpRequest) -> HttpResponse:
    """POST starts an export; GET shows where the latest one is (polled by htmx while running)."""
    if request.method == "POST":
        try:
            data_export.data_export_start(user=request.user, ip_address=_ip(request))
        except ApplicationError as error:
            messages.info(request, error.message)
        else:
            messages.success(request, "Your export is being prepared. It appears below when it is ready.")
        if not request.htmx:
            return redirect("accounts:profile")
    export = data_export.data_export_latest(user=request.user)
    if request.htmx:
        return render(request, "accounts/profile.html#export", {"export": export})
    return redirect("accounts:profile")


@login_required
@require_GET
@never_cache
def export_download(request: HttpRequest) -> HttpResponse:
    export, archive = data_export.data_export_download(user=request.user, ip_address=_ip(request))
    response = HttpResponse(archive, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{data_export.data_export_filename(export)}"'
    return response


# --- Delete my account -----------------------------------------------------------------------


@login_required
@never_cache
def account_delete(request: HttpRequest) -> HttpResponse:
    user = request.user
    plan = account_deletion.account_deletion_plan(user=user)
    uses_two_factor = two_factor.two_factor_enabled(user=user)
    form = AccountDeleteForm(
        request.POST if request.method == "POST" else None,
        two_factor=uses_two_factor,
        closing=plan.closing_confirmation if plan.closing else "",
    )
    if request.method == "POST" and not plan.blocked and form.is_valid():
        try:
            account_deletion.account_delete(
                user=user,
                password=form.cleaned_data["password"],
                code=form.cleaned_data.get("code", ""),
                confirmation=form.cleaned_data.get("confirmation", ""),
            )
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            logout(request)
            return redirect("accounts:account-deleted")
    status = 400 if form.is_bound and (form.errors or plan.blocked) else 200
    return render(request, "accounts/account_delete.html", {"form": form, "plan": plan}, status=status)


def account_deleted(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/message_page.html",
        {
            "heading": "Your account is deleted",
            "text": "Your account, your sessions and your API tokens are gone, and so is any agency you were the "
            "only member of. Thank you for using Huntaze.",
        },
    )
