"""Reads for accounts and tenancy. Every getter answers 404 for "missing" and "not yours" alike."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db import connection
from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404

from apps.accounts.models import Agency, ApiToken, Creator, CreatorAssignment, Invitation, Membership, User
from apps.accounts.permissions import Perm, has_perm, sees_all_creators
from apps.core.statements import ModelColumns

INVITATION_SALT = "huntaze.invitation"
EMAIL_VERIFICATION_SALT = "huntaze.email-verification"
EMAIL_VERIFICATION_MAX_AGE = 3 * 24 * 3600


def membership_list_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("agency").order_by("agency__name")


def membership_current(*, user: User, agency_id: int | None) -> Membership | None:
    """The membership for the agency chosen in the session, else the user's first one, with its
    agency (one written-out statement: every page and every websocket connect asks it)."""
    try:
        agency_id = int(agency_id) if agency_id is not None else None
    except (TypeError, ValueError):
        agency_id = None  # not an id: the first membership, as for a session without a choice
    if agency_id is not None and not -(2**63) <= agency_id < 2**63:
        agency_id = None
    with connection.cursor() as cursor:
        cursor.execute(_CURRENT_SQL, [user.pk, agency_id])
        row = cursor.fetchone()
    if row is None:
        return None
    membership = _MEMBERSHIP.build(row[: len(_MEMBERSHIP)])
    membership.agency = _AGENCY.build(row[len(_MEMBERSHIP) :])
    return membership


def membership_refresh(*, membership: Membership) -> Membership | None:
    """The same membership as it is now (role may have changed), with its agency and user, or
    None when it was removed or its user deactivated. Long-lived sessions (websockets) call this
    before each action."""
    return member_and_creator(membership=membership, creator_id=None)[0]


# The membership reads of every page (membership_current), every websocket connect and every
# websocket message (member_and_creator), written out (apps/core/statements.py ``ModelColumns``):
# as querysets, the studio's per-message membership and creator reads cost about 3 ms of CPU to
# build and compile at every generation, against 0.1 ms to run them (docs/benchmarks.md, "Studio
# stream start").
_MEMBERSHIP = ModelColumns(Membership, "m")
_AGENCY = ModelColumns(Agency, "a")
_USER = ModelColumns(User, "u")
_CREATOR = ModelColumns(Creator, "c")
_MEMBERSHIP_TABLE, _AGENCY_TABLE = Membership._meta.db_table, Agency._meta.db_table
_USER_TABLE, _CREATOR_TABLE = User._meta.db_table, Creator._meta.db_table
_MEMBER_SQL = f"""
SELECT {_MEMBERSHIP.sql}, {_AGENCY.sql}, {_USER.sql}
FROM {_MEMBERSHIP_TABLE} m JOIN {_AGENCY_TABLE} a ON a.id = m.agency_id JOIN {_USER_TABLE} u ON u.id = m.user_id
WHERE m.id = %s AND m.user_id = %s AND u.is_active
"""  # noqa: S608 (table and column names from the models)
_CURRENT_SQL = f"""
SELECT {_MEMBERSHIP.sql}, {_AGENCY.sql}
FROM {_MEMBERSHIP_TABLE} m JOIN {_AGENCY_TABLE} a ON a.id = m.agency_id
WHERE m.user_id = %s
ORDER BY CASE WHEN m.agency_id = %s THEN 0 ELSE 1 END, m.created_at, m.id
LIMIT 1
"""  # noqa: S608 (table and column names from the models)
_MEMBER_AND_CREATOR_SQL = f"""
SELECT {_MEMBERSHIP.sql}, {_AGENCY.sql}, {_USER.sql}, {_CREATOR.sql},
    EXISTS (SELECT 1 FROM {CreatorAssignment._meta.db_table} ca WHERE ca.membership_id = m.id AND ca.creator_id = c.id)
FROM {_MEMBERSHIP_TABLE} m JOIN {_AGENCY_TABLE} a ON a.id = m.agency_id JOIN {_USER_TABLE} u ON u.id = m.user_id
    LEFT JOIN {_CREATOR_TABLE} c ON c.id = %s AND c.agency_id = m.agency_id
WHERE m.id = %s AND m.user_id = %s AND u.is_active
"""  # noqa: S608 (table and column names from the models)


def member_and_creator(
    *, membership: Membership, creator_id: int | None, include_archived: bool = False
) -> tuple[Membership | None, Creator | None]:
    """``membership_refresh`` and ``creator_get_for_member`` in one statement: the membership as it
    is now (None when removed or its user deactivated), and the creator when this member may see
    it (None for a missing id, another agency's creator, an archived one unless
    ``include_archived``, and for a chatter a creator not assigned to them)."""
    if creator_id is not None and not -(2**63) <= creator_id < 2**63:
        creator_id = None  # no such creator; an id beyond the column's range would be a database error
    with connection.cursor() as cursor:
        if creator_id is None:
            cursor.execute(_MEMBER_SQL, [membership.pk, membership.user_id])
        else:
            cursor.execute(_MEMBER_AND_CREATOR_SQL, [creator_id, membership.pk, membership.user_id])
        row = cursor.fetchone()
    if row is None:
        return None, None
    end = len(_MEMBERSHIP)
    current = _MEMBERSHIP.build(row[:end])
    current.agency = _AGENCY.build(row[end : end + len(_AGENCY)])
    end += len(_AGENCY)
    current.user = _USER.build(row[end : end + len(_USER)])
    end += len(_USER)
    if creator_id is None:
        return current, None
    creator = _CREATOR.build(row[end : end + len(_CREATOR)])
    assigned = bool(row[-1])
    # permissions.has_perm reads it for this creator instead of asking again. It is true of this read
    # only: a caller that keeps the membership for later removes it (apps/studio/consumers.py).
    current.creator_assignment = (creator_id, assigned)
    if creator is None or (creator.is_archived and not include_archived):
        return current, None
    if not sees_all_creators(current) and not assigned:
        return current, None
    creator.agency = current.agency
    return current, creator


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


def member_list(*, agency_id: int, viewer: Membership | None = None) -> QuerySet[Membership]:
    """The agency's members with their creator assignments; for a ``viewer`` who does not see
    every creator (a chatter), only the assignments to creators the viewer sees: another
    chatter's other creators are not theirs to know."""
    assignments = CreatorAssignment.objects.select_related("creator").order_by("creator__display_name")
    if viewer is not None and not sees_all_creators(viewer):
        visible = creator_list(membership=viewer, include_archived=True).values("pk")
        assignments = assignments.filter(creator__in=visible)
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
