"""Deleting one's own account.

Rules the database cannot state, enforced here:

- the user proves it is them: their password, and a current authenticator or recovery code when
  they use two-factor sign-in (apps/accounts/two_factor.py);
- an agency is never left without an owner: where the user is the only owner and other members
  remain, they must make someone else an owner first (``member_change_role`` on the team page);
- where the user is the agency's only member, the agency is closed with them: all of its data is
  deleted, after the user types the agency's name (``closing_confirmation``). Before it goes,
  every app with a ``closing.py`` module defining ``agency_closing(*, agency)`` is asked (discovered
  like the other hooks, apps/core/registry.py ``app_modules``): a hook that raises
  ApplicationError refuses the deletion and nothing is deleted; what a hook answers (a callable)
  runs last, after the rows are deleted, in the same transaction: billing cancels the agency's
  Stripe subscription there, so the customer stops being charged, and a refusal from Stripe still
  rolls the whole deletion back;
- two co-owners deleting their accounts at the same moment cannot both leave: the owner
  memberships of the user's agencies are locked (``SELECT … FOR UPDATE``, in id order) and the
  plan is computed again under that lock, so the second one waits, then sees the first one gone;
- every session of the user's is logged out (their open websockets close) before the row goes;
  their memberships, and with them their API tokens, are deleted with the user (``CASCADE``);
  what they wrote in agencies that remain stays there, with its author unset (``SET_NULL``).

The audit trail keeps one ``account.deleted`` event with counts only: no user, email or address;
the user's earlier account events (which hold IP addresses) are deleted with them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Q

from apps.accounts import sessions, two_factor
from apps.accounts.models import AccountEvent, Agency, Membership, Role, User
from apps.core.errors import ApplicationError
from apps.core.registry import app_modules

logger = logging.getLogger(__name__)


@dataclass
class DeletionPlan:
    """What deleting the account would do: agencies it blocks on, agencies it closes, agencies
    the user simply leaves."""

    blocked: list[Agency] = field(default_factory=list)
    closing: list[Agency] = field(default_factory=list)
    leaving: list[Agency] = field(default_factory=list)

    @property
    def closing_confirmation(self) -> str:
        """What the user types to close the agencies: their names, as listed."""
        return ", ".join(agency.name for agency in self.closing)


def account_deletion_plan(*, user: User) -> DeletionPlan:
    """One query: each of the user's memberships with its agency's owner and member counts."""
    memberships = (
        Membership.objects.filter(user=user)
        .select_related("agency")
        .annotate(
            owners=Count("agency__memberships", filter=Q(agency__memberships__role=Role.OWNER)),
            members=Count("agency__memberships"),
        )
        .order_by("agency__name")
    )
    plan = DeletionPlan()
    for membership in memberships:
        if membership.members == 1:
            plan.closing.append(membership.agency)
        elif membership.role == Role.OWNER and membership.owners == 1:
            plan.blocked.append(membership.agency)
        else:
            plan.leaving.append(membership.agency)
    return plan


def _check_identity(*, user: User, password: str, code: str) -> None:
    if not password or not user.check_password(password):
        raise ApplicationError("That password is not right.", field="password")
    if two_factor.two_factor_enabled(user=user):
        if two_factor.second_factor_throttled(user=user):
            raise ApplicationError("Too many wrong codes in a row. Wait a few seconds, then try again.", field="code")
        if not code or two_factor.second_factor_verify(user=user, code=code) is None:
            raise ApplicationError(
                "Enter a current code from your authenticator app, or a recovery code.", field="code"
            )


def _owners_lock(*, user: User) -> None:
    """Lock the owner memberships of every agency the user belongs to (and the user's own), in id
    order so that two deletions never wait on each other in a circle. Held to the commit."""
    agencies = Membership.objects.filter(user=user).values("agency_id")
    list(
        Membership.objects.select_for_update()
        .filter(Q(agency_id__in=agencies, role=Role.OWNER) | Q(user=user))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def agency_closing_hooks(agencies: list[Agency]) -> list[Callable[[], None]]:
    """Ask every app's ``closing.py`` before ``agencies`` are deleted; ApplicationError when one
    refuses. Answers what the apps want done last, once the rows are deleted in the same
    transaction (billing: cancel the Stripe subscription). Also used by the agency admin."""
    hooks = [module.agency_closing for module in app_modules("closing") if hasattr(module, "agency_closing")]
    finishers = []
    for agency in agencies:
        for hook in hooks:
            finish = hook(agency=agency)
            if finish is not None:
                finishers.append(finish)
    return finishers


def account_delete(*, user: User, password: str, code: str = "", confirmation: str = "") -> DeletionPlan:
    """Delete ``user`` and the agencies only they belong to. ApplicationError (nothing changed)
    when the proof is wrong, an agency would lose its last owner, the closing confirmation does
    not match, or an app refuses to close an agency (its Stripe subscription cannot be cancelled)."""
    _check_identity(user=user, password=password, code=code)
    with transaction.atomic():
        _owners_lock(user=user)
        plan = account_deletion_plan(user=user)  # under the lock: a co-owner leaving first is seen
        if plan.blocked:
            names = ", ".join(agency.name for agency in plan.blocked)
            raise ApplicationError(
                f"You are the only owner of {names}. Make another member an owner on the team page first, "
                "or remove the other members to close the agency.",
                extra={"agencies": [{"id": agency.pk, "name": agency.name} for agency in plan.blocked]},
            )
        if plan.closing and confirmation.strip().casefold() != plan.closing_confirmation.casefold():
            raise ApplicationError(
                f"Type “{plan.closing_confirmation}” to confirm that its data is deleted too.", field="confirmation"
            )
        # The apps check first (nothing deleted yet when one refuses); what they must do outside
        # (cancel in Stripe) comes last, after every row is deleted: a refusal then still rolls
        # the whole deletion back, and a failing deletion never leaves a cancelled subscription.
        finishers = agency_closing_hooks(plan.closing)
        closed = Agency.objects.filter(pk__in=[agency.pk for agency in plan.closing]).delete()[0] if plan.closing else 0
        AccountEvent.objects.filter(user=user).delete()
        AccountEvent.objects.create(
            user=None,
            kind=AccountEvent.Kind.ACCOUNT_DELETED,
            detail={"agencies_closed": len(plan.closing), "agencies_left": len(plan.leaving)},
        )
        user_id = user.pk
        sessions.user_sessions_end_all(user=user)
        user.delete()
        for finish in finishers:
            finish()
    logger.info("user %s deleted their account (%d agencies closed, %d rows)", user_id, len(plan.closing), closed)
    return plan
