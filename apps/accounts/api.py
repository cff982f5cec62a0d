"""API: agency, creators, members, invitations and API tokens; the caller's own profile and data
export (``/me/profile``, ``/me/export``).

Every operation resolves the caller's membership (from the token or the session) and goes
through the same selectors and services as the pages, so a role denied on a page is denied here.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate
from ninja.security import HttpBearer, SessionAuth
from pydantic import EmailStr, StringConstraints, field_validator

from apps.accounts import data_export, permissions, profile, selectors, services
from apps.accounts.models import PLATFORMS, ApiToken, DataExport, Language, Membership, Role, TokenScope, User
from apps.accounts.permissions import Perm, require, scope_allows
from apps.core.errors import ApplicationError
from apps.core.openapi import ErrorOut, Id
from apps.core.registry import entitlement_request_gate

router = Router()

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiTokenAuth(HttpBearer):
    """A live token (else 401). A read-scoped token may only use safe methods (else 403)."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        api_token = services.api_token_authenticate(token)
        if api_token is not None and api_token.scope == TokenScope.READ and request.method not in SAFE_METHODS:
            raise PermissionDenied("This API token has the read scope: it can only read.")
        return api_token


class MemberSessionAuth(SessionAuth):
    """The browser session, with CSRF on unsafe methods. Without a logged-in session it does not
    apply, so a write with no token or an expired or revoked one is a 401, not ninja's 403 "CSRF
    check Failed" (which it raises before looking for a session at all)."""

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return super().__call__(request)


def api_membership(request: HttpRequest, *, scope: str | None = None) -> Membership:
    """The membership the request acts as: the token's (narrowed to the token's scope), else the
    session's current one. ``scope`` is the token scope the operation needs beyond what the
    permission map already asks (admin-level reads such as listing tokens)."""
    if isinstance(request.auth, ApiToken):
        membership = request.auth.membership
        membership.token_scope = request.auth.scope
        if scope is not None and not scope_allows(request.auth.scope, scope):
            raise PermissionDenied(f"This API token needs the “{scope}” scope for this.")
    else:
        membership = request.tenant.membership
        if membership is None:
            raise PermissionDenied("You are not a member of any agency yet.")
    entitlement_request_gate(request, membership.agency_id)  # the plan's features (billing)
    return membership


# --- Me --------------------------------------------------------------------------------------


class MeOut(Schema):
    email: str
    full_name: str
    agency_id: int
    agency_name: str
    role: str
    permissions: list[str]
    via_token: bool
    token_scope: TokenScope | None = Field(None, description="The API token's scope; null for a browser session.")
    token_expires_at: datetime | None = None


@router.get("/me", response=MeOut, tags=["me"])
def me(request: HttpRequest):
    membership = api_membership(request)
    return {
        "email": membership.user.email,
        "full_name": membership.user.full_name,
        "agency_id": membership.agency_id,
        "agency_name": membership.agency.name,
        "role": membership.role,
        "permissions": [perm.value for perm in Perm if permissions.has_perm(membership, perm)],
        "via_token": isinstance(request.auth, ApiToken),
        "token_scope": request.auth.scope if isinstance(request.auth, ApiToken) else None,
        "token_expires_at": request.auth.expires_at if isinstance(request.auth, ApiToken) else None,
    }


# --- Agency ----------------------------------------------------------------------------------


class AgencyOut(Schema):
    id: int
    name: str
    timezone: str
    created_at: datetime


def _check_timezone(value: str | None) -> str | None:
    if value is not None and value not in zoneinfo.available_timezones():
        raise ValueError(f"'{value}' is not a known time zone (for example Europe/Paris).")
    return value


class AgencyIn(Schema):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
    # No default of its own: a client renaming the agency must not move it to UTC.
    timezone: str | None = Field(None, description="An IANA time zone; left out or null keeps the agency's.")

    _tz = field_validator("timezone")(_check_timezone)


@router.get("/agency", response=AgencyOut, tags=["agency"])
def agency_detail(request: HttpRequest):
    return api_membership(request).agency


@router.put("/agency", response=AgencyOut, tags=["agency"])
def agency_update(request: HttpRequest, payload: AgencyIn):
    membership = api_membership(request, scope=TokenScope.ADMIN)
    return services.agency_update(membership=membership, name=payload.name, timezone_name=payload.timezone)


# --- Creators --------------------------------------------------------------------------------


class CreatorOut(Schema):
    id: int
    display_name: str
    handles: dict[str, str]
    niche: str
    persona: str
    voice: str
    sample_texts: list[str]
    avoid_words: list[str]
    avoid_topics: list[str]
    language: str
    timezone: str
    ppv_price_min: Decimal
    ppv_price_max: Decimal
    currency: str
    is_archived: bool
    created_at: datetime
    updated_at: datetime


class CreatorIn(Schema):
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
    handles: dict[str, Annotated[str, StringConstraints(pattern=r"^@?[A-Za-z0-9_.\-]{1,64}$")]] = {}
    niche: Annotated[str, StringConstraints(max_length=80)] = ""
    persona: Annotated[str, StringConstraints(max_length=4000)] = ""
    voice: Annotated[str, StringConstraints(max_length=4000)] = ""
    sample_texts: list[Annotated[str, StringConstraints(max_length=2000)]] = Field(default=[], max_length=100)
    avoid_words: list[ShortText] = Field(default=[], max_length=200)
    avoid_topics: list[ShortText] = Field(default=[], max_length=200)
    language: Language = Language.EN
    timezone: str = "UTC"
    ppv_price_min: Decimal = Field(Decimal("5.00"), gt=0, max_digits=8, decimal_places=2)
    ppv_price_max: Decimal = Field(Decimal("50.00"), gt=0, max_digits=8, decimal_places=2)

    _tz = field_validator("timezone")(_check_timezone)

    @field_validator("handles")
    @classmethod
    def _known_platforms(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(PLATFORMS)
        if unknown:
            raise ValueError(f"Unknown platform(s): {', '.join(sorted(unknown))}. Known: {', '.join(PLATFORMS)}.")
        return {key: handle.lstrip("@") for key, handle in value.items()}


class CreatorPatch(CreatorIn):
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)] | None = None


@router.get("/creators", response=list[CreatorOut], tags=["creators"])
@paginate(page_size=25)
def creator_list(request: HttpRequest, archived: bool = False):
    creators = selectors.creator_list(membership=api_membership(request), include_archived=archived)
    return creators.filter(is_archived=True) if archived else creators


@router.post("/creators", response={201: CreatorOut, 409: ErrorOut}, tags=["creators"])
def creator_create(request: HttpRequest, payload: CreatorIn):
    return Status(201, services.creator_create(membership=api_membership(request), data=payload.model_dump()))


@router.get("/creators/{creator_id}", response=CreatorOut, tags=["creators"])
def creator_detail(request: HttpRequest, creator_id: Id):
    return selectors.creator_get_for_member(membership=api_membership(request), creator_id=creator_id)


@router.patch("/creators/{creator_id}", response={200: CreatorOut, 409: ErrorOut}, tags=["creators"])
def creator_update(request: HttpRequest, creator_id: Id, payload: CreatorPatch):
    membership = api_membership(request)
    creator = selectors.creator_get_for_member(membership=membership, creator_id=creator_id)
    data = payload.model_dump(exclude_unset=True)
    return services.creator_update(membership=membership, creator=creator, data=data)


class ArchiveIn(Schema):
    archived: bool


@router.post("/creators/{creator_id}/archive", response=CreatorOut, tags=["creators"])
def creator_archive(request: HttpRequest, creator_id: Id, payload: ArchiveIn):
    """Archive (``{"archived": true}``) or restore a creator; archived creators keep their data."""
    membership = api_membership(request)
    creator = selectors.creator_get_for_member(membership=membership, creator_id=creator_id)
    return services.creator_set_archived(membership=membership, creator=creator, archived=payload.archived)


# --- Members and invitations -----------------------------------------------------------------


class MemberOut(Schema):
    id: int
    email: str
    full_name: str
    role: str
    creator_ids: list[Id]
    created_at: datetime

    @staticmethod
    def resolve_email(obj: Membership) -> str:
        return obj.user.email

    @staticmethod
    def resolve_full_name(obj: Membership) -> str:
        return obj.user.full_name

    @staticmethod
    def resolve_creator_ids(obj: Membership) -> list[int]:
        return [a.creator_id for a in obj.assignments.all()]


class RoleIn(Schema):
    role: Role


class AssignmentsIn(Schema):
    creator_ids: list[Id] = Field(max_length=1000)


@router.get("/members", response=list[MemberOut], tags=["members"])
@paginate(page_size=50)
def member_list(request: HttpRequest):
    membership = api_membership(request)
    return selectors.member_list(agency_id=membership.agency_id, viewer=membership)


@router.patch("/members/{membership_id}", response=MemberOut, tags=["members"])
def member_change_role(request: HttpRequest, membership_id: Id, payload: RoleIn):
    actor = api_membership(request)
    member = selectors.member_get(agency_id=actor.agency_id, membership_id=membership_id)
    services.member_change_role(by=actor, member=member, role=payload.role)
    return selectors.member_list(agency_id=actor.agency_id, viewer=actor).get(pk=member.pk)


@router.put("/members/{membership_id}/assignments", response=MemberOut, tags=["members"])
def member_set_assignments(request: HttpRequest, membership_id: Id, payload: AssignmentsIn):
    actor = api_membership(request)
    member = selectors.member_get(agency_id=actor.agency_id, membership_id=membership_id)
    creators = list(selectors.creator_list(membership=actor).filter(pk__in=payload.creator_ids))
    if len(creators) != len(set(payload.creator_ids)):
        raise ApplicationError("Some creator ids are not creators of this agency.", field="creator_ids")
    services.member_set_assignments(by=actor, member=member, creators=creators)
    return selectors.member_list(agency_id=actor.agency_id, viewer=actor).get(pk=member.pk)


@router.delete("/members/{membership_id}", response={204: None}, tags=["members"])
def member_remove(request: HttpRequest, membership_id: Id):
    actor = api_membership(request)
    member = selectors.member_get(agency_id=actor.agency_id, membership_id=membership_id)
    services.member_remove(by=actor, member=member)
    return Status(204, None)


class InvitationOut(Schema):
    id: int
    email: str
    role: str
    created_at: datetime
    email_sent_at: datetime | None


class InvitationIn(Schema):
    email: EmailStr
    role: Role = Role.CHATTER


@router.get("/invitations", response=list[InvitationOut], tags=["members"])
@paginate(page_size=50)
def invitation_list(request: HttpRequest):
    membership = api_membership(request)
    require(membership, Perm.MANAGE_MEMBERS)
    return selectors.invitation_list_pending(agency_id=membership.agency_id)


@router.post("/invitations", response={201: InvitationOut, 409: ErrorOut}, tags=["members"])
def invitation_create(request: HttpRequest, payload: InvitationIn):
    invitation = services.invitation_create(by=api_membership(request), email=payload.email, role=payload.role)
    return Status(201, invitation)


@router.delete("/invitations/{invitation_id}", response={204: None}, tags=["members"])
def invitation_revoke(request: HttpRequest, invitation_id: Id):
    actor = api_membership(request)
    require(actor, Perm.MANAGE_MEMBERS)
    invitation = selectors.invitation_get(agency_id=actor.agency_id, invitation_id=invitation_id)
    services.invitation_revoke(by=actor, invitation=invitation)
    return Status(204, None)


# --- API tokens (created on the settings page only: the secret is shown once there) ----------
# Tokens manage tokens only with the admin scope; chatters and viewers see their own tokens.


class ApiTokenOut(Schema):
    id: int
    name: str
    prefix: str
    scope: TokenScope
    member_email: str
    created_at: datetime
    expires_at: datetime
    expired: bool
    last_used_at: datetime | None
    revoked_at: datetime | None

    @staticmethod
    def resolve_member_email(obj: ApiToken) -> str:
        return obj.membership.user.email

    @staticmethod
    def resolve_expired(obj: ApiToken) -> bool:
        return obj.is_expired


@router.get("/api-tokens", response=list[ApiTokenOut], tags=["api tokens"])
@paginate(page_size=50)
def api_token_list(request: HttpRequest):
    """The agency's tokens for owners and managers; the caller's own for chatters and viewers."""
    return selectors.api_token_list(membership=api_membership(request, scope=TokenScope.ADMIN))


@router.delete("/api-tokens/{token_id}", response={204: None}, tags=["api tokens"])
def api_token_revoke(request: HttpRequest, token_id: Id):
    """Revoke a token: your own, or (owners and managers) another member's; a manager cannot
    revoke an owner's token (403)."""
    membership = api_membership(request, scope=TokenScope.ADMIN)
    token = selectors.api_token_get(membership=membership, token_id=token_id)
    services.api_token_revoke(membership=membership, token=token)
    return Status(204, None)


# --- My profile and data (the caller's own: the token's user, or the session's) ----------------


def api_user(request: HttpRequest) -> User:
    """The user the request acts as: the API token's member, else the logged-in session's user.
    Profile operations need no membership (a user may belong to no agency)."""
    if isinstance(request.auth, ApiToken):
        return request.auth.membership.user
    return request.user


class ProfileOut(Schema):
    email: str
    full_name: str
    timezone: str = Field(description="IANA name; empty means the current agency's time zone.")
    language: str = Field(description="A code from LANGUAGES; empty means the default (English).")
    keyboard_shortcuts: bool
    avatar_updated_at: datetime | None


class ProfilePatch(Schema):
    full_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=150)] | None = None
    timezone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    language: Annotated[str, StringConstraints(strip_whitespace=True, max_length=16)] | None = None
    keyboard_shortcuts: bool | None = None


@router.get("/me/profile", response=ProfileOut, tags=["me"])
def my_profile(request: HttpRequest):
    return api_user(request)


@router.patch("/me/profile", response=ProfileOut, tags=["me"])
def my_profile_update(request: HttpRequest, payload: ProfilePatch):
    data = {key: value for key, value in payload.dict(exclude_unset=True).items() if value is not None}
    return profile.profile_update(user=api_user(request), data=data, ip_address=request.META.get("REMOTE_ADDR"))


class DataExportOut(Schema):
    id: int
    status: DataExport.Status
    progress: int = Field(description="Percent done.")
    size: int = Field(description="Bytes of the ZIP once ready.")
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None
    download_url: str | None = Field(
        None, description="While ready: the page that downloads the ZIP, in a browser session of the same user."
    )

    @staticmethod
    def resolve_download_url(obj: DataExport) -> str | None:
        return reverse("accounts:data-export-download") if obj.is_downloadable else None


class DataExportStatusOut(Schema):
    export: DataExportOut | None = Field(description="The latest export; null before the first.")


@router.post("/me/export", response={202: DataExportOut, 409: ErrorOut}, tags=["me"])
def my_export_start(request: HttpRequest):
    export = data_export.data_export_start(user=api_user(request), ip_address=request.META.get("REMOTE_ADDR"))
    return Status(202, export)


@router.get("/me/export", response=DataExportStatusOut, tags=["me"])
def my_export_status(request: HttpRequest):
    return {"export": data_export.data_export_latest(user=api_user(request))}
