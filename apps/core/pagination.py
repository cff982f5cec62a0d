"""The one pagination of every API list: page numbers within a range the database can offset;
and ``CappedPaginator`` for pages whose lists may hold hundreds of thousands of rows.

ninja's ``PageNumberPagination`` accepts any positive integer, so ``?page=698323643016116864``
turned into an OFFSET beyond the database's 64-bit integer and a 500. Here ``page`` and
``page_size`` are bounded in the schema, so an out-of-range value is a 422 naming the field, and a
page past the last one is simply empty. ``NINJA_PAGINATION_CLASS`` points at this class, so every
``@paginate(page_size=…)`` uses it.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property
from ninja import Field, Schema
from ninja.pagination import PageNumberPagination

MAX_PAGE = 100_000
MAX_PAGE_SIZE = 100


class Pagination(PageNumberPagination):
    class Input(Schema):
        page: int = Field(1, ge=1, le=MAX_PAGE, description=f"Page number, 1 to {MAX_PAGE:,}.")
        page_size: int | None = Field(
            None, ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, 1 to {MAX_PAGE_SIZE}."
        )

    def __init__(self, page_size: int = 25, max_page_size: int = MAX_PAGE_SIZE, **kwargs) -> None:
        super().__init__(page_size=page_size, max_page_size=max_page_size, **kwargs)


class CappedPaginator(Paginator):
    """A page list that counts at most ``cap`` rows: past it ``count`` is ``cap``, ``capped`` is
    True and the pages stop there ("10,000+ fans"; narrow the filters or export to see the rest).

    Counting every match on each request is what costs a list over 200,000 rows (docs/benchmarks.md,
    the fan CRM pages); counting ``cap + 1`` rows without ordering lets the database stop early."""

    def __init__(self, object_list, per_page, *, cap: int = 10_000, **kwargs) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.cap = cap

    @cached_property
    def _found(self) -> int:
        return self.object_list.order_by()[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._found, self.cap)

    @property
    def capped(self) -> bool:
        return self._found > self.cap
