"""Reads for accounts and tenancy. Every getter answers 404 for "missing" and "not yours" alike."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404

from apps.accounts.models import ApiToken, Creator, CreatorAssignment, Invitation, Membership, User
from apps.accounts.permissions import Perm, has_perm, sees_all_creators

INVITATION_SALT = "huntaze.invitation"
EMAIL_VERIFICATION_SALT = "huntaze.email-verification"
EMAIL_VERIFICATION_MAX_AGE = 3 * 24 * 3600


def membership_list_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("agency").order_by("agency__name")


def membership_current(*, user: User, agency_id: int | None) -> Membership | None:
    """The membership for the agency chosen in the session, else the user's first one."""
    memberships = Membership.objects.filter(user=user).select_related("agency")
    if agency_id is not None:
        chosen = memberships.filter(agency_id=agency_id).first()
        if chosen is not None:
            return chosen
    return memberships.order_by("created_at", "id").first()


def membership_refresh(*, membership: Membership) -> Membership | None:
    """The same membership as it is now (role may have changed), or None when it was removed or
    its user deactivated. Long-lived sessions (websockets) call this before each action."""
    return (
        Membership.objects.select_related("agency", "user")
        .filter(pk=membership.pk, user_id=membership.user_id, user__is_active=True)
        .first()
    )


def creator_list(*, membership: Membership, include_archived: bool = False) -> QuerySet[Creator]:
    """The creators this member may see: all of the agency's, or a chatter's assigned ones."""
    creators = Creator.objects.for_agency(membership.agency_id)
    if not include_archived:
        creators = creators.filter(is_archived=False)
    if not sees_all_creators(membership):
        creators = creators.filter(assignments__membership=membership)
    return creators.order_by("display_name", "id")


def creator_get_for_member(*, membership: Membership, creator_id: int, include_archived: bool = True) -> Creator:
    creator = creator_list(membership=membership, include_archived=include_archived).filter(pk=creator_id).first()
    if creator is None:
        raise Http404("No such creator.")
    return creator


def member_list(*, agency_id: int) -> QuerySet[Membership]:
    assignments = CreatorAssignment.objects.select_related("creator").order_by("creator__display_name")
    return (
        Membership.objects.for_agency(agency_id)
        .select_related("user")
        .prefetch_related(Prefetch("assignments", queryset=assignments))
        .order_by("created_at", "id")
    )


def member_get(*, agency_id: int, membership_id: int) -> Membership:
    membership = (
        Membership.objects.for_agency(agency_id).select_related("user", "agency").filter(pk=membership_id).first()
    )
    if membership is None:
        raise Http404("No such member.")
    return membership


def invitation_list_pending(*, agency_id: int) -> QuerySet[Invitation]:
    return (
        Invitation.objects.for_agency(agency_id)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by")
    )


def invitation_get(*, agency_id: int, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.for_agency(agency_id).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"id": invitation.pk, "email": invitation.email.lower()}, salt=INVITATION_SALT)


def invitation_from_token(token: str) -> Invitation:
    """The pending invitation a link points at; 404 when forged, expired, used or revoked."""
    try:
        data = signing.loads(token, salt=INVITATION_SALT, max_age=settings.INVITATION_MAX_AGE)
    except signing.SignatureExpired:
        raise Http404("This invitation link has expired. Ask for a new one.") from None
    except signing.BadSignature:
        raise Http404("This invitation link is not valid.") from None
    invitation = (
        Invitation.objects.select_related("agency", "invited_by")
        .filter(pk=data.get("id"), email__iexact=data.get("email", ""))
        .first()
    )
    if invitation is None or not invitation.is_pending:
        raise Http404("This invitation has already been used or was withdrawn.")
    return invitation


def email_verification_token(user: User) -> str:
    return signing.dumps({"id": user.pk, "email": user.email.lower()}, salt=EMAIL_VERIFICATION_SALT)


def user_from_verification_token(token: str) -> User:
    """The user an email verification link was sent to; 404 when forged, expired or for an
    address the account no longer has."""
    try:
        data = signing.loads(token, salt=EMAIL_VERIFICATION_SALT, max_age=EMAIL_VERIFICATION_MAX_AGE)
    except signing.SignatureExpired:
        raise Http404("This verification link has expired. Log in and ask for a new one.") from None
    except signing.BadSignature:
        raise Http404("This verification link is not valid.") from None
    user = User.objects.filter(pk=data.get("id"), email__iexact=data.get("email", ""), is_active=True).first()
    if user is None:
        raise Http404("This verification link is not valid.")
    return user


def sees_all_api_tokens(membership: Membership) -> bool:
    """Owners and managers see the agency's tokens; chatters and viewers only their own."""
    return has_perm(membership, Perm.MANAGE_MEMBERS)


def api_token_list(*, membership: Membership) -> QuerySet[ApiToken]:
    tokens = ApiToken.objects.for_agency(membership.agency_id).select_related("membership__user")
    if not sees_all_api_tokens(membership):
        tokens = tokens.filter(membership=membership)
    return tokens


def api_token_get(*, membership: Membership, token_id: int) -> ApiToken:
    token = api_token_list(membership=membership).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such API token.")
    return token


def agency_counts(*, agency_id: int) -> dict[str, int]:
    """Headline numbers for the dashboard's team card, in one query each."""
    members = Membership.objects.for_agency(agency_id).aggregate(n=Count("id"))["n"]
    pending = invitation_list_pending(agency_id=agency_id).count()
    return {"members": members, "pending_invitations": pending}
