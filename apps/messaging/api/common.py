"""What the messaging API modules share: the project's pagination with a hook that completes a
page in a constant number of queries (live segment counts), and the read-only role check for
the owners-and-managers reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from apps.accounts.models import Membership
from apps.accounts.permissions import ROLE_PERMISSIONS, Perm, require
from apps.core.pagination import Pagination


class PageHookPagination(Pagination):
    """The project's pagination; ``complete(request, items)`` runs once on the page's items (a list),
    so what each item needs from other tables is read in one query for the page, not one per item."""

    def __init__(self, complete: Callable[[HttpRequest, list], None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.complete = complete

    def paginate_queryset(self, queryset, pagination, request: HttpRequest, **params: Any) -> Any:
        page = super().paginate_queryset(queryset, pagination, request=request, **params)
        items = list(page[self.items_attribute])
        if self.complete is not None and items:
            self.complete(request, items)
        page[self.items_attribute] = items
        return page


def require_role_read(membership: Membership, perm: Perm) -> None:
    """A read reserved to the roles holding ``perm`` (the audit log: owners and managers, who hold
    ``edit``). A token needs only the read scope for it: the scope narrows what a token may
    change, and reading changes nothing."""
    require(membership, Perm.VIEW)
    if perm not in ROLE_PERMISSIONS.get(membership.role, frozenset()):
        raise PermissionDenied(f"Your role does not allow this ({perm.value.replace('_', ' ')}).")
