"""The one permission map. Pages, the API and tasks all ask ``has_perm``/``require``.

Roles:
- owner: everything, including billing and other owners.
- manager: runs the agency day to day: edits creators, sends, manages members (not owners).
- chatter: sees and answers fans of the creators assigned to them; edits nothing.
- viewer: reads everything the agency shows, changes nothing.

API token scopes (apps.accounts.models.TokenScope) narrow a role, never widen it: a request made
with a token carries its scope on the membership (``membership.token_scope``) and ``has_perm``
grants only what both the member's current role and the scope allow.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied

from apps.accounts.models import Role, TokenScope
from apps.core.errors import ApplicationError

if TYPE_CHECKING:
    from apps.accounts.models import Creator, Membership, User


class Perm(StrEnum):
    VIEW = "view"
    EDIT = "edit"
    SEND_MESSAGES = "send_messages"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_BILLING = "manage_billing"


ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.OWNER: frozenset(Perm),
    Role.MANAGER: frozenset({Perm.VIEW, Perm.EDIT, Perm.SEND_MESSAGES, Perm.MANAGE_MEMBERS}),
    Role.CHATTER: frozenset({Perm.VIEW, Perm.SEND_MESSAGES}),
    Role.VIEWER: frozenset({Perm.VIEW}),
}

SCOPE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    TokenScope.READ: frozenset({Perm.VIEW}),
    TokenScope.WRITE: frozenset({Perm.VIEW, Perm.EDIT, Perm.SEND_MESSAGES}),
    TokenScope.ADMIN: frozenset(Perm),
}
SCOPE_ORDER = [TokenScope.READ, TokenScope.WRITE, TokenScope.ADMIN]
# The highest scope worth giving a token of each role (chatters write: they send messages).
ROLE_MAX_SCOPE: dict[str, str] = {
    Role.OWNER: TokenScope.ADMIN,
    Role.MANAGER: TokenScope.ADMIN,
    Role.CHATTER: TokenScope.WRITE,
    Role.VIEWER: TokenScope.READ,
}

# Roles a member may hand out (invite with, or change another member to).
GRANTABLE_ROLES: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(Role.values),
    Role.MANAGER: frozenset({Role.MANAGER, Role.CHATTER, Role.VIEWER}),
    Role.CHATTER: frozenset(),
    Role.VIEWER: frozenset(),
}


def sees_all_creators(membership: Membership) -> bool:
    """Chatters are limited to their assigned creators; every other role sees all."""
    return membership.role != Role.CHATTER


def has_perm(membership: Membership | None, perm: Perm, creator: Creator | None = None) -> bool:
    if membership is None:
        return False
    if perm not in ROLE_PERMISSIONS.get(membership.role, frozenset()):
        return False
    scope = getattr(membership, "token_scope", None)
    if scope is not None and perm not in SCOPE_PERMISSIONS.get(scope, frozenset()):
        return False
    if creator is not None:
        if creator.agency_id != membership.agency_id:
            return False
        if not sees_all_creators(membership):
            # (creator id, assigned) when the membership was read with that creator's assignment
            # in the same statement (selectors.member_and_creator): no second query for it.
            known = getattr(membership, "creator_assignment", None)
            if known is not None and known[0] == creator.pk:
                return known[1]
            return membership.assignments.filter(creator=creator).exists()
    return True


def require(membership: Membership | None, perm: Perm, creator: Creator | None = None) -> None:
    if not has_perm(membership, perm, creator):
        raise PermissionDenied(f"Your role does not allow this ({perm.value.replace('_', ' ')}).")


def scope_allows(scope: str | None, needed: str) -> bool:
    """Whether a token scope covers ``needed``; None (a browser session) covers everything."""
    return scope is None or SCOPE_ORDER.index(TokenScope(scope)) >= SCOPE_ORDER.index(TokenScope(needed))


def scopes_for_role(role: str) -> list[str]:
    """The scopes a member of ``role`` may give a new token, lowest first: none above the role."""
    highest = SCOPE_ORDER.index(ROLE_MAX_SCOPE.get(role, TokenScope.READ))
    return SCOPE_ORDER[: highest + 1]


def can_grant(membership: Membership, role: str) -> bool:
    return role in GRANTABLE_ROLES.get(membership.role, frozenset())


def can_manage(actor: Membership, target: Membership) -> bool:
    """Whether ``actor`` may change or remove ``target`` (managers cannot touch owners)."""
    if actor.agency_id != target.agency_id or not has_perm(actor, Perm.MANAGE_MEMBERS):
        return False
    return actor.role == Role.OWNER or target.role != Role.OWNER


class EmailNotVerifiedError(ApplicationError):
    status_code = 403
    code = "email_not_verified"


def require_verified(user: User) -> None:
    """Actions that reach outside the account (emailing invitations, storing provider keys) need
    a verified email address: a throwaway sign-up must not be able to use Huntaze as a relay."""
    if user.email_verified_at is None:
        raise EmailNotVerifiedError(
            "Confirm your email address first: open the link we emailed you, or send a new one from the banner."
        )
