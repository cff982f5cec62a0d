"""Accounts pages: sign-up, invitations, switchers and the settings screens.

Thin: parse the form, call one service or selector, render. Full page normally, the named
fragment for htmx requests.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts import selectors, services
from apps.accounts.decorators import member_required
from apps.accounts.forms import (
    AgencyForm,
    ApiTokenForm,
    AssignmentsForm,
    CreatorForm,
    InvitationForm,
    InvitationSignupForm,
    MemberRoleForm,
    SignupForm,
    SwitchForm,
)
from apps.accounts.middleware import SESSION_AGENCY, SESSION_CREATOR
from apps.accounts.models import Role
from apps.accounts.permissions import Perm, can_grant, can_manage, has_perm, scopes_for_role, sees_all_creators
from apps.accounts.throttles import ThrottledError, client_address, throttle_hit
from apps.core.errors import ApplicationError, form_add_error

PAGE_SIZE = 25
AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _page(request: HttpRequest, items, size: int = PAGE_SIZE):
    return Paginator(items, size).get_page(request.GET.get("page"))


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("core:dashboard")
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            throttle_hit(action="signup", address=client_address(request), email=form.cleaned_data["email"])
            membership = services.user_signup(**form.cleaned_data)
        except ApplicationError as error:
            form_add_error(form, error)
            status = error.status_code if isinstance(error, ThrottledError) else 200
        else:
            login(request, membership.user, backend=AUTH_BACKEND)
            request.session[SESSION_AGENCY] = membership.agency_id
            messages.success(
                request,
                f"Welcome to Huntaze. {membership.agency.name} is ready: add your first creator. "
                f"We emailed a link to confirm {membership.user.email}.",
            )
            return redirect("accounts:creator-create")
    return render(request, "accounts/signup.html", {"form": form}, status=status)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset view, throttled per address and per email (429 with a form error)."""

    def form_valid(self, form):
        try:
            throttle_hit(
                action="password_reset", address=client_address(self.request), email=form.cleaned_data["email"]
            )
        except ThrottledError as error:
            form_add_error(form, error)
            return self.render_to_response(self.get_context_data(form=form), status=error.status_code)
        return super().form_valid(form)


def email_verify(request: HttpRequest, token: str) -> HttpResponse:
    """Opening the emailed link verifies the address (idempotent, so a mail scanner's visit is harmless)."""
    user = selectors.user_from_verification_token(token)
    if request.user.pk == user.pk:
        # Verify the request's own user object (middleware may have loaded it already), so the
        # page below no longer shows the "confirm your email address" banner.
        user = request.user
    services.email_verify(user=user)
    return render(
        request,
        "accounts/message_page.html",
        {"heading": "Email address confirmed", "text": f"Thank you: {user.email} is confirmed."},
    )


@login_required
@require_POST
def email_verification_resend(request: HttpRequest) -> HttpResponse:
    try:
        throttle_hit(action="verification_resend", address=client_address(request), email=request.user.email)
        services.email_verification_resend(user=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"We sent a new confirmation link to {request.user.email}.")
    next_url = request.POST.get("next", "")
    if next_url.startswith("/") and not next_url.startswith("//"):
        return redirect(next_url)
    return redirect("core:dashboard")


@login_required
def agency_create(request: HttpRequest) -> HttpResponse:
    form = AgencyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        membership = services.agency_create(
            user=request.user, name=form.cleaned_data["name"], timezone_name=form.cleaned_data["timezone"]
        )
        request.session[SESSION_AGENCY] = membership.agency_id
        request.session.pop(SESSION_CREATOR, None)
        messages.success(request, f"{membership.agency.name} created. You are its owner.")
        return redirect("core:dashboard")
    return render(request, "accounts/agency_create.html", {"form": form})


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.invitation_from_token(token)
    signup_form = None
    if request.user.is_authenticated:
        if request.method == "POST":
            try:
                membership = services.invitation_accept(invitation=invitation, user=request.user)
            except ApplicationError as error:
                messages.error(request, error.message)
            else:
                request.session[SESSION_AGENCY] = membership.agency_id
                request.session.pop(SESSION_CREATOR, None)
                messages.success(
                    request, f"You joined {membership.agency.name} as {membership.get_role_display().lower()}."
                )
                return redirect("core:dashboard")
    else:
        signup_form = InvitationSignupForm(request.POST or None, email=invitation.email)
        if request.method == "POST" and signup_form.is_valid():
            try:
                membership = services.invitation_accept_with_signup(invitation=invitation, **signup_form.cleaned_data)
            except ApplicationError as error:
                form_add_error(signup_form, error)
            else:
                login(request, membership.user, backend=AUTH_BACKEND)
                request.session[SESSION_AGENCY] = membership.agency_id
                messages.success(request, f"Welcome! You joined {membership.agency.name}.")
                return redirect("core:dashboard")
    email_matches = request.user.is_authenticated and request.user.email.lower() == invitation.email.lower()
    return render(
        request,
        "accounts/invitation_accept.html",
        {"invitation": invitation, "signup_form": signup_form, "email_matches": email_matches},
    )


@login_required
@require_POST
def switch_agency(request: HttpRequest) -> HttpResponse:
    form = SwitchForm(request.POST)
    if form.is_valid():
        agency_ids = {m.agency_id for m in request.tenant.memberships}
        if form.cleaned_data["id"] in agency_ids:
            request.session[SESSION_AGENCY] = form.cleaned_data["id"]
            request.session.pop(SESSION_CREATOR, None)
            return redirect("core:dashboard")
    messages.error(request, "You are not a member of that agency.")
    return redirect("core:dashboard")


@member_required()
@require_POST
def switch_creator(request: HttpRequest) -> HttpResponse:
    form = SwitchForm(request.POST)
    if form.is_valid():
        creator = selectors.creator_get_for_member(
            membership=request.tenant.membership, creator_id=form.cleaned_data["id"], include_archived=False
        )
        request.session[SESSION_CREATOR] = creator.pk
        messages.success(request, f"Now working as {creator.display_name}.")
    else:
        messages.error(request, "Choose a creator from the list.")
    next_url = request.POST.get("next", "")
    if next_url.startswith("/") and not next_url.startswith("//"):
        return redirect(next_url)
    return redirect("core:dashboard")


@member_required()
def agency_settings(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    agency = membership.agency
    form = AgencyForm(request.POST or None, initial={"name": agency.name, "timezone": agency.timezone})
    if request.method == "POST":
        if not has_perm(membership, Perm.EDIT):
            messages.error(request, "Your role cannot change agency settings.")
            return redirect("accounts:agency-settings")
        if form.is_valid():
            services.agency_update(
                membership=membership, name=form.cleaned_data["name"], timezone_name=form.cleaned_data["timezone"]
            )
            messages.success(request, "Agency settings saved.")
            return redirect("accounts:agency-settings")
    return render(request, "accounts/agency_settings.html", {"form": form})


@member_required()
@vary_on_headers("HX-Request")
def creator_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    show = request.GET.get("show", "active")
    creators = selectors.creator_list(membership=membership, include_archived=show == "archived")
    if show == "archived":
        creators = creators.filter(is_archived=True)
    query = request.GET.get("q", "").strip()[:80]
    if query:
        creators = creators.filter(display_name__icontains=query)
    page = _page(request, creators)
    template = "accounts/creator_list.html#creator-table" if request.htmx else "accounts/creator_list.html"
    return render(request, template, {"page": page, "query": query, "show": show})


@member_required(Perm.EDIT)
def creator_create(request: HttpRequest) -> HttpResponse:
    form = CreatorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            creator = services.creator_create(membership=request.tenant.membership, data=form.to_service_data())
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            request.session[SESSION_CREATOR] = creator.pk
            messages.success(request, f"{creator.display_name} added.")
            return redirect("accounts:creator-list")
    return render(request, "accounts/creator_form.html", {"form": form, "creator": None})


@member_required()
def creator_edit(request: HttpRequest, creator_id: int) -> HttpResponse:
    membership = request.tenant.membership
    creator = selectors.creator_get_for_member(membership=membership, creator_id=creator_id)
    can_edit = has_perm(membership, Perm.EDIT)
    form = CreatorForm(request.POST or None, initial=CreatorForm.initial_for(creator))
    if request.method == "POST":
        if not can_edit:
            messages.error(request, "Your role cannot edit creators.")
            return redirect("accounts:creator-edit", creator_id=creator.pk)
        if form.is_valid():
            try:
                services.creator_update(membership=membership, creator=creator, data=form.to_service_data())
            except ApplicationError as error:
                form_add_error(form, error)
            else:
                messages.success(request, f"{creator.display_name} saved.")
                return redirect("accounts:creator-edit", creator_id=creator.pk)
    return render(request, "accounts/creator_form.html", {"form": form, "creator": creator, "can_edit": can_edit})


@member_required(Perm.EDIT)
@require_POST
def creator_archive(request: HttpRequest, creator_id: int) -> HttpResponse:
    creator = selectors.creator_get_for_member(membership=request.tenant.membership, creator_id=creator_id)
    archive = request.POST.get("action", "archive") != "restore"
    services.creator_set_archived(membership=request.tenant.membership, creator=creator, archived=archive)
    if archive:
        messages.success(request, f"{creator.display_name} archived. Their data is kept; restore them any time.")
    else:
        messages.success(request, f"{creator.display_name} restored.")
    return redirect("accounts:creator-list")


@member_required()
def member_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    can_invite = has_perm(membership, Perm.MANAGE_MEMBERS)
    form = InvitationForm(request.POST or None)
    if request.method == "POST":
        if not can_invite:
            messages.error(request, "Your role cannot invite members.")
            return redirect("accounts:member-list")
        if form.is_valid():
            try:
                invitation = services.invitation_create(by=membership, **form.cleaned_data)
            except ApplicationError as error:
                form_add_error(form, error)
            else:
                messages.success(request, f"Invitation sent to {invitation.email}.")
                return redirect("accounts:member-list")
    members = selectors.member_list(agency_id=membership.agency_id, viewer=membership)
    rows = [{"member": m, "manageable": can_manage(membership, m)} for m in members]
    context = {
        "rows": rows,
        "invitations": selectors.invitation_list_pending(agency_id=membership.agency_id),
        "form": form,
        "can_invite": can_invite,
        "sees_all_creators": sees_all_creators(membership),
        "grantable": [role for role in Role if can_grant(membership, role)],
    }
    return render(request, "accounts/member_list.html", context)


@member_required(Perm.MANAGE_MEMBERS)
def member_edit(request: HttpRequest, membership_id: int) -> HttpResponse:
    actor = request.tenant.membership
    member = selectors.member_get(agency_id=actor.agency_id, membership_id=membership_id)
    creators = selectors.creator_list(membership=actor)
    role_form = MemberRoleForm(
        request.POST if request.POST.get("form") == "role" else None, initial={"role": member.role}
    )
    assign_form = AssignmentsForm(
        request.POST if request.POST.get("form") == "assignments" else None,
        creators=creators,
        initial={"creators": [a.creator_id for a in member.assignments.all()]},
    )
    if request.method == "POST":
        try:
            if request.POST.get("form") == "role" and role_form.is_valid():
                services.member_change_role(by=actor, member=member, role=role_form.cleaned_data["role"])
                messages.success(request, f"{member.user} is now {member.get_role_display().lower()}.")
                return redirect("accounts:member-edit", membership_id=member.pk)
            if request.POST.get("form") == "assignments" and assign_form.is_valid():
                services.member_set_assignments(
                    by=actor, member=member, creators=list(assign_form.cleaned_data["creators"])
                )
                messages.success(request, f"Assignments for {member.user} saved.")
                return redirect("accounts:member-edit", membership_id=member.pk)
        except ApplicationError as error:
            form_add_error(role_form if request.POST.get("form") == "role" else assign_form, error)
    context = {
        "member": member,
        "role_form": role_form,
        "assign_form": assign_form,
        "manageable": can_manage(actor, member),
    }
    return render(request, "accounts/member_edit.html", context)


@member_required()
@require_POST
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    actor = request.tenant.membership
    member = selectors.member_get(agency_id=actor.agency_id, membership_id=membership_id)
    leaving = member.pk == actor.pk
    try:
        services.member_remove(by=actor, member=member)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("accounts:member-list")
    if leaving:
        request.session.pop(SESSION_AGENCY, None)
        request.session.pop(SESSION_CREATOR, None)
        messages.success(request, f"You left {actor.agency.name}.")
        return redirect("core:dashboard")
    messages.success(request, f"{member.user} was removed from the agency.")
    return redirect("accounts:member-list")


@member_required(Perm.MANAGE_MEMBERS)
@require_POST
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    actor = request.tenant.membership
    invitation = selectors.invitation_get(agency_id=actor.agency_id, invitation_id=invitation_id)
    try:
        services.invitation_revoke(by=actor, invitation=invitation)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Invitation to {invitation.email} withdrawn.")
    return redirect("accounts:member-list")


@member_required()
def api_token_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    form = ApiTokenForm(request.POST or None, scopes=scopes_for_role(membership.role))
    new_secret = None
    if request.method == "POST" and form.is_valid():
        try:
            _token, new_secret = services.api_token_create(
                membership=membership,
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                expires_at=form.expires_at(),
            )
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            form = ApiTokenForm(scopes=scopes_for_role(membership.role))
    page = _page(request, selectors.api_token_list(membership=membership))
    rows = [
        {"token": token, "revocable": token.membership_id == membership.pk or can_manage(membership, token.membership)}
        for token in page
    ]
    response = render(
        request,
        "accounts/api_tokens.html",
        {
            "page": page,
            "rows": rows,
            "form": form,
            "new_secret": new_secret,
            "sees_all": selectors.sees_all_api_tokens(membership),
        },
    )
    response["Cache-Control"] = "no-store"  # the page may hold a secret shown once
    return response


@member_required()
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    membership = request.tenant.membership
    token = selectors.api_token_get(membership=membership, token_id=token_id)
    try:
        services.api_token_revoke(membership=membership, token=token)
    except PermissionDenied as error:
        messages.error(request, str(error))
        return redirect("accounts:api-token-list")
    messages.success(request, f"Token “{token.name}” revoked. Anything using it stops working now.")
    return redirect("accounts:api-token-list")
