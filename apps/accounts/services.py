"""Writes for accounts and tenancy: sign-up and email verification, creators, invitations,
members, API tokens.

Each action authorises through apps.accounts.permissions, so pages, the API and tasks enforce
the same rules, and asks the agency's plan (apps.core.registry.entitlement_require, answered by
the billing app) before adding a creator or a seat or changing a read-only creator. Business
rules that the database cannot state (the last owner stays, managers cannot touch owners, an
invitation is for the address it was sent to) are enforced here; the last-owner rule under a lock
on the agency's owners, so two owners leaving at once cannot both pass it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import (
    Agency,
    ApiToken,
    Creator,
    CreatorAssignment,
    Invitation,
    Membership,
    Role,
    TokenScope,
    User,
)
from apps.accounts.permissions import Perm, can_grant, can_manage, require, require_verified, scopes_for_role
from apps.accounts.signals import member_joined
from apps.core.errors import ApplicationError, ConflictError
from apps.core.registry import entitlement_require

API_TOKEN_PREFIX = "hz_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
API_TOKEN_DEFAULT_DAYS = 90
API_TOKEN_MAX_DAYS = 366

CREATOR_FIELDS = (
    "display_name",
    "handles",
    "niche",
    "persona",
    "voice",
    "sample_texts",
    "avoid_words",
    "avoid_topics",
    "language",
    "timezone",
    "ppv_price_min",
    "ppv_price_max",
)


# --- Agencies and sign-up --------------------------------------------------------------------


@transaction.atomic
def agency_create(*, user: User, name: str, timezone_name: str = "UTC") -> Membership:
    """A new agency with ``user`` as its owner."""
    agency = Agency.objects.create(name=name.strip(), timezone=timezone_name)
    return Membership.objects.create(agency=agency, user=user, role=Role.OWNER)


def _user_create(*, taken: str, email: str, password: str, **fields: Any) -> User:
    """A new user, or ConflictError(``taken``) when the address is taken: by an account the check
    can see, or by one committed since (a double-submitted sign-up) that only the insert meets."""
    if User.objects.filter(email__iexact=email).exists():
        raise ConflictError(taken, field="email")
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, **fields)
    except IntegrityError:
        raise ConflictError(taken, field="email") from None


@transaction.atomic
def user_signup(*, email: str, password: str, full_name: str, agency_name: str) -> Membership:
    """A new user, unverified, owning a new agency; the verification link is emailed on commit."""
    user = _user_create(
        taken="An account with this email already exists. Log in instead.",
        email=email,
        password=password,
        full_name=full_name.strip(),
    )
    from apps.accounts.tasks import send_verification_email

    send_verification_email.delay_on_commit(user.pk)
    return agency_create(user=user, name=agency_name)


def email_verify(*, user: User) -> bool:
    """Mark the address verified; False when it already was (the link is safe to open twice)."""
    updated = User.objects.filter(pk=user.pk, email_verified_at__isnull=True).update(email_verified_at=timezone.now())
    user.refresh_from_db(fields=["email_verified_at"])
    return bool(updated)


def email_verification_resend(*, user: User) -> None:
    if user.email_verified_at is not None:
        raise ApplicationError("Your email address is already confirmed.")
    from apps.accounts.tasks import send_verification_email

    send_verification_email.delay_on_commit(user.pk)


def agency_update(*, membership: Membership, name: str, timezone_name: str | None = None) -> Agency:
    """Rename the agency and, when ``timezone_name`` is given, move it to that time zone (None
    keeps the one it has)."""
    require(membership, Perm.EDIT)
    agency = membership.agency
    agency.name = name.strip()
    fields = ["name"]
    if timezone_name is not None:
        agency.timezone = timezone_name
        fields.append("timezone")
    agency.save(update_fields=fields)
    return agency


# --- Creators --------------------------------------------------------------------------------


def _validate_creator(data: dict[str, Any]) -> None:
    low, high = Decimal(data["ppv_price_min"]), Decimal(data["ppv_price_max"])
    if low <= 0:
        raise ApplicationError("The lowest PPV price must be above zero.", field="ppv_price_min")
    if high < low:
        raise ApplicationError("The highest PPV price cannot be below the lowest.", field="ppv_price_max")
    name = data.get("display_name")
    if not isinstance(name, str) or not name.strip():  # None too (a PATCH with null), not "None"
        raise ApplicationError("A creator needs a display name.", field="display_name")


def creator_create(*, membership: Membership, data: dict[str, Any]) -> Creator:
    require(membership, Perm.EDIT)
    values = {key: data[key] for key in CREATOR_FIELDS if key in data}
    values.setdefault("ppv_price_min", Decimal("5.00"))
    values.setdefault("ppv_price_max", Decimal("50.00"))
    _validate_creator(values)
    entitlement_require(membership.agency_id, limit="creators")
    try:
        with transaction.atomic():
            return Creator.objects.create(agency_id=membership.agency_id, **values)
    except IntegrityError:
        raise ConflictError("This agency already has a creator with that name.", field="display_name") from None


def creator_update(*, membership: Membership, creator: Creator, data: dict[str, Any]) -> Creator:
    require(membership, Perm.EDIT, creator)
    entitlement_require(membership.agency_id, creator_id=creator.pk)
    changed = [key for key in CREATOR_FIELDS if key in data]
    for key in changed:
        setattr(creator, key, data[key])
    _validate_creator({key: getattr(creator, key) for key in CREATOR_FIELDS})
    try:
        with transaction.atomic():
            creator.save(update_fields=[*changed, "updated_at"])
    except IntegrityError:
        raise ConflictError("This agency already has a creator with that name.", field="display_name") from None
    return creator


def creator_set_archived(*, membership: Membership, creator: Creator, archived: bool) -> Creator:
    """Archiving hides a creator everywhere but keeps all of its data; it can be restored."""
    require(membership, Perm.EDIT, creator)
    if creator.is_archived and not archived:
        entitlement_require(membership.agency_id, limit="creators")
    creator.is_archived = archived
    creator.save(update_fields=["is_archived", "updated_at"])
    return creator


# --- Members ---------------------------------------------------------------------------------


def _owners_lock(target: Membership) -> None:
    """Lock the agency's owner memberships and ``target``, in id order, to the commit: two owners
    removing or demoting each other at once then run one after the other, and the second counts
    the owners the first left (else each counts the other and the agency is left with none)."""
    list(
        Membership.objects.for_agency(target.agency_id)
        .select_for_update()
        .filter(Q(role=Role.OWNER) | Q(pk=target.pk))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _owners_left_after(target: Membership) -> int:
    return Membership.objects.for_agency(target.agency_id).filter(role=Role.OWNER).exclude(pk=target.pk).count()


@transaction.atomic
def member_remove(*, by: Membership, member: Membership) -> None:
    _owners_lock(member)
    if member.pk == by.pk:
        if member.role == Role.OWNER and _owners_left_after(member) == 0:
            raise ApplicationError("You are the last owner. Make someone else an owner before leaving.")
    elif not can_manage(by, member):
        require(by, Perm.MANAGE_MEMBERS)
        raise ApplicationError("Only an owner can remove another owner.")
    if member.role == Role.OWNER and _owners_left_after(member) == 0:
        raise ApplicationError("An agency must keep at least one owner.")
    member.delete()


@transaction.atomic
def member_change_role(*, by: Membership, member: Membership, role: str) -> Membership:
    require(by, Perm.MANAGE_MEMBERS)
    if role not in Role.values:
        raise ApplicationError(f"“{role}” is not a role.", field="role")
    if not can_manage(by, member) or not can_grant(by, role):
        raise ApplicationError("Only an owner can grant or change the owner role.", field="role")
    _owners_lock(member)
    if member.role == Role.OWNER and role != Role.OWNER and _owners_left_after(member) == 0:
        raise ApplicationError("An agency must keep at least one owner.", field="role")
    member.role = role
    member.save(update_fields=["role"])
    if role != Role.CHATTER:
        member.assignments.all().delete()
    return member


@transaction.atomic
def member_set_assignments(*, by: Membership, member: Membership, creators: list[Creator]) -> None:
    """Replace a chatter's assignments to the agency's active creators (the ones a page or the API
    offers); assignments to archived creators stay, so restoring a creator gives it back its
    chatters."""
    require(by, Perm.MANAGE_MEMBERS)
    if member.role != Role.CHATTER:
        raise ApplicationError("Only chatters are assigned to creators; other roles see every creator.")
    if any(creator.agency_id != by.agency_id for creator in creators):
        raise ApplicationError("A creator in that list does not belong to this agency.", field="creators")
    member.assignments.filter(creator__is_archived=False).exclude(creator__in=creators).delete()
    existing = set(member.assignments.values_list("creator_id", flat=True))
    CreatorAssignment.objects.bulk_create(
        [
            CreatorAssignment(agency_id=by.agency_id, membership=member, creator=creator)
            for creator in creators
            if creator.pk not in existing
        ]
    )


# --- Invitations -----------------------------------------------------------------------------


def invitation_create(*, by: Membership, email: str, role: str) -> Invitation:
    require(by, Perm.MANAGE_MEMBERS)
    require_verified(by.user)
    email = email.strip().lower()
    if role not in Role.values:
        raise ApplicationError(f"“{role}” is not a role.", field="role")
    if not can_grant(by, role):
        raise ApplicationError("Only an owner can invite another owner.", field="role")
    if Membership.objects.for_agency(by.agency_id).filter(user__email__iexact=email).exists():
        raise ConflictError("This person is already a member of the agency.", field="email")
    entitlement_require(by.agency_id, limit="seats")
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(agency_id=by.agency_id, email=email, role=role, invited_by=by.user)
            from apps.accounts.tasks import send_invitation_email

            send_invitation_email.delay_on_commit(invitation.pk)
    except IntegrityError:
        raise ConflictError("An invitation to this address is already waiting.", field="email") from None
    return invitation


def invitation_revoke(*, by: Membership, invitation: Invitation) -> Invitation:
    require(by, Perm.MANAGE_MEMBERS)
    if not invitation.is_pending:
        raise ApplicationError("This invitation is no longer pending.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Join the agency. The invitation is for one address: only that user may accept it."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_pending:
        raise ApplicationError("This invitation has already been used or was withdrawn.")
    if user.email.lower() != invitation.email.lower():
        raise ApplicationError(
            f"This invitation was sent to {invitation.email}. Log in with that address to accept it."
        )
    if user.email_verified_at is None:  # the invitation reached this address: that verifies it
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    if not Membership.objects.for_agency(invitation.agency_id).filter(user=user).exists():
        # The seat was counted when the invitation was sent; a downgrade since may have taken it.
        entitlement_require(invitation.agency_id, limit="seats", adding=0)
    membership, created = Membership.objects.get_or_create(
        agency_id=invitation.agency_id,
        user=user,
        defaults={"role": invitation.role, "invited_by": invitation.invited_by},
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    if created:
        inviter = Membership.objects.for_agency(invitation.agency_id).filter(user_id=invitation.invited_by_id).first()
        member_joined.send(sender=Membership, membership=membership, inviter=inviter)
    return membership


@transaction.atomic
def invitation_accept_with_signup(*, invitation: Invitation, password: str, full_name: str) -> Membership:
    # The invitation link reached this address: that verifies it.
    user = _user_create(
        taken="An account with this email already exists. Log in to accept the invitation.",
        email=invitation.email,
        password=password,
        full_name=full_name.strip(),
        email_verified_at=timezone.now(),
    )
    return invitation_accept(invitation=invitation, user=user)


# --- API tokens ------------------------------------------------------------------------------


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(
    *, membership: Membership, name: str, scope: str | None = None, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token and its secret. The secret is returned once and never stored.

    Any member may create tokens, with a scope up to what their role can use (``scope`` defaults
    to that highest scope) and an expiry within API_TOKEN_MAX_DAYS (default API_TOKEN_DEFAULT_DAYS).
    A token never grants more than its member's role at the time it is used.
    """
    require(membership, Perm.VIEW)
    name = name.strip()
    if not name:
        raise ApplicationError("Give the token a name so you can recognise it later.", field="name")
    allowed = scopes_for_role(membership.role)
    scope = scope or allowed[-1]
    if scope not in TokenScope.values:
        raise ApplicationError(f"“{scope}” is not a token scope.", field="scope")
    if scope not in allowed:
        raise ApplicationError(
            f"Your role ({membership.get_role_display().lower()}) can give a token at most the “{allowed[-1]}” scope.",
            field="scope",
        )
    now = timezone.now()
    expires_at = expires_at or now + timedelta(days=API_TOKEN_DEFAULT_DAYS)
    if expires_at <= now:
        raise ApplicationError("Choose an expiry date in the future.", field="expires_at")
    if expires_at > now + timedelta(days=API_TOKEN_MAX_DAYS, minutes=1):
        raise ApplicationError(f"A token can last at most {API_TOKEN_MAX_DAYS} days.", field="expires_at")
    prefix = secrets.token_hex(4)
    raw = f"{API_TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        agency_id=membership.agency_id,
        membership=membership,
        name=name,
        prefix=prefix,
        token_hash=_hash_token(raw),
        scope=scope,
        expires_at=expires_at,
    )
    return token, raw


def api_token_revoke(*, membership: Membership, token: ApiToken) -> ApiToken:
    """Members revoke their own tokens; owners and managers revoke other members' tokens, but a
    manager cannot revoke an owner's (PermissionDenied, as for removing an owner)."""
    if token.membership_id != membership.pk:
        require(membership, Perm.MANAGE_MEMBERS)
        if not can_manage(membership, token.membership):
            raise PermissionDenied("Only an owner can revoke an owner's API token.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The live (not revoked, not expired) token for a secret, with its membership, agency and
    user, as they are now; None otherwise."""
    if not raw.startswith(API_TOKEN_PREFIX) or len(raw) > 128:
        return None
    token = (
        ApiToken.objects.select_related("membership__user", "membership__agency")
        .filter(token_hash=_hash_token(raw), revoked_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if token is None or not token.membership.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
