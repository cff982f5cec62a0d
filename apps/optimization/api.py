"""API: optimization (mounted at /api/v1/ by huntaze/api.py); docs/api-optimization.md.

What the optimization pages show and do, for integrators: a creator's PPV price, best posting and
messaging times and recent anomalies (computed on request by apps/optimization/services.py), the
nightly run's recommendations with accept and dismiss, the track record, stored anomalies with
acknowledge, the agency's settings, and PPV offers (the pricing engine's evidence).

Every member reads what concerns the creators they may see (a chatter: their assigned ones);
another agency's creator, recommendation or anomaly, or one of a creator a chatter does not
handle, answers 404. Deciding on recommendations, changing settings and recording offers need the
``edit`` permission (owners and managers, a write token): a viewer or a chatter gets 403.
"Not enough data" is an answer (200 with ``status: not_enough_data``), never a number.
"""

# No `from __future__ import annotations`: @paginate resolves parameter annotations in ninja's
# module, where names such as KindName would not be found.
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate

from apps.accounts.api import api_membership
from apps.accounts.models import Creator, Membership
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import creator_get_for_member, creator_list
from apps.core.errors import fields_renamed
from apps.core.openapi import ErrorOut, Id
from apps.optimization import selectors, services
from apps.optimization.models import OptimizationSettings
from apps.optimization.schemas import (
    AnomalyOut,
    AnomalyStatusName,
    ComprehensiveOut,
    CreatorAnomaliesOut,
    CreatorTimingOut,
    DismissIn,
    KindName,
    OfferIn,
    OfferOut,
    PricingOut,
    RecommendationOut,
    RecommendationStatusName,
    RiskName,
    SensitivityName,
    ServiceAnomalyOut,
    SettingsIn,
    SettingsOut,
    StrategyName,
    TimingOut,
    TrackRecordOut,
)

router = Router(tags=["optimization"])
API_FIELDS = {"creator": "creator_id"}  # the services' field names → the API's

STRATEGY = "Overrides the creator's setting for this answer: revenue_max, balanced or conversion_max."
RISK = "Overrides the creator's setting for this answer: conservative, moderate or aggressive."
SENSITIVITY = "Overrides the creator's setting for this answer: low, medium or high."
STRATEGY_QUERY = Query(None, description=STRATEGY)
RISK_QUERY = Query(None, description=RISK)
SENSITIVITY_QUERY = Query(None, description=SENSITIVITY)
DECISION_RESPONSES = {200: RecommendationOut, 409: ErrorOut}  # 409: the recommendation is not open any more


def _creator(membership: Membership, creator_id: int) -> Creator:
    return creator_get_for_member(membership=membership, creator_id=creator_id)


def _visible_ids(membership: Membership):
    return creator_list(membership=membership, include_archived=True).values_list("id", flat=True)


def _reader(request: HttpRequest) -> Membership:
    membership = api_membership(request)
    require(membership, Perm.VIEW)
    return membership


def _detected(anomalies: list[services.DetectedAnomaly]) -> list[dict]:
    return [
        {
            "metric": a.metric, "label": a.label, "day": a.day, "at": a.at, "value": a.value,
            "expected_low": a.expected_low, "expected_high": a.expected_high, "score": a.score,
            "severity": a.severity, "direction": a.direction,
        }
        for a in anomalies
    ]  # fmt: skip


# --- A creator, computed on request -----------------------------------------------------------------


@router.get("/optimization/creators/{creator_id}/comprehensive", response=ComprehensiveOut)
def creator_comprehensive(
    request: HttpRequest,
    creator_id: Id,
    strategy: StrategyName | None = STRATEGY_QUERY,
    risk: RiskName | None = RISK_QUERY,
    sensitivity: SensitivityName | None = SENSITIVITY_QUERY,
):
    """Everything at once: the PPV price, posting and messaging times (in the creator's timezone)
    and the last 30 days' anomalies, under the creator's settings unless overridden."""
    creator = _creator(_reader(request), creator_id)
    result = services.comprehensive(creator=creator, strategy=strategy, risk=risk, sensitivity=sensitivity)
    zone = selectors.zone_name(creator.timezone)
    return {
        "creator_id": creator.pk,
        "creator_name": creator.display_name,
        "strategy": result.strategy,
        "risk": result.risk,
        "sensitivity": result.sensitivity,
        "generated_at": result.generated_at,
        "pricing": PricingOut.build(result.pricing),
        "post_timing": TimingOut.build(result.post_timing, zone),
        "message_timing": TimingOut.build(result.message_timing, zone),
        "anomalies": _detected(result.anomalies),
    }


@router.get("/optimization/creators/{creator_id}/pricing", response=PricingOut)
def creator_pricing(
    request: HttpRequest,
    creator_id: Id,
    strategy: StrategyName | None = STRATEGY_QUERY,
    risk: RiskName | None = RISK_QUERY,
):
    """The PPV price to ask, with its expected unlock rate, revenue per fan, confidence and the
    unlock-rate curve; or ``not_enough_data`` with how many more offers are needed."""
    creator = _creator(_reader(request), creator_id)
    strategy, risk, _sensitivity = services.resolved_settings(creator, strategy=strategy, risk=risk)
    return PricingOut.build(services.creator_pricing(creator=creator, strategy=strategy, risk=risk))


@router.get("/optimization/creators/{creator_id}/timing", response=CreatorTimingOut)
def creator_timing(request: HttpRequest, creator_id: Id):
    """The best weekday x hour slots to post and to message, in the creator's timezone, with the
    week's heat map."""
    creator = _creator(_reader(request), creator_id)
    posts, messages = services.creator_timing(creator=creator)
    zone = selectors.zone_name(creator.timezone)
    return {
        "creator_id": creator.pk,
        "timezone": zone,
        "post_timing": TimingOut.build(posts, zone),
        "message_timing": TimingOut.build(messages, zone),
    }


@router.get("/optimization/creators/{creator_id}/anomalies", response=CreatorAnomaliesOut)
def creator_anomalies(request: HttpRequest, creator_id: Id, sensitivity: SensitivityName | None = SENSITIVITY_QUERY):
    """Unusual values in the creator's last 30 complete days, each with the range that was
    expected, as the detector sees them now (stored ones: GET /optimization/anomalies)."""
    creator = _creator(_reader(request), creator_id)
    _strategy, _risk, sensitivity = services.resolved_settings(creator, sensitivity=sensitivity)
    found = services.creator_anomalies(creator=creator, sensitivity=sensitivity)
    return {
        "creator_id": creator.pk,
        "sensitivity": sensitivity,
        "days": services.ANOMALY_REPORT_DAYS,
        "anomalies": _detected(found),
    }


# --- Recommendations -----------------------------------------------------------------------------------


@router.get("/optimization/recommendations", response=list[RecommendationOut])
@paginate(page_size=25)
def recommendation_list(
    request: HttpRequest,
    status: RecommendationStatusName | None = None,
    kind: KindName | None = None,
    creator_id: Id | None = None,
):
    """The nightly run's recommendations, open ones first, then newest first (one open per creator and kind)."""
    membership = _reader(request)
    creator_ids = [_creator(membership, creator_id).pk] if creator_id is not None else _visible_ids(membership)
    return selectors.recommendation_list(
        agency_id=membership.agency_id, creator_ids=creator_ids, status=status, kind=kind
    )


@router.post("/optimization/recommendations/{recommendation_id}/accept", response=DECISION_RESPONSES)
def recommendation_accept(request: HttpRequest, recommendation_id: Id):
    """Accept an open recommendation (409 otherwise). Prices and times are then measured on what
    follows: the track record."""
    membership = api_membership(request)
    return services.recommendation_accept(membership=membership, recommendation_id=recommendation_id)


@router.post("/optimization/recommendations/{recommendation_id}/dismiss", response=DECISION_RESPONSES)
def recommendation_dismiss(request: HttpRequest, recommendation_id: Id, payload: DismissIn):
    """Dismiss an open recommendation (409 otherwise), optionally saying why (``{}`` for no reason)."""
    membership = api_membership(request)
    return services.recommendation_dismiss(
        membership=membership, recommendation_id=recommendation_id, reason=payload.reason
    )


@router.get("/optimization/track-record", response=list[TrackRecordOut])
def track_record(request: HttpRequest, creator_id: Id | None = None):
    """How accepted recommendations turned out, one row per kind: for one creator, or for every
    creator the member sees (a chatter's assigned creators, everyone else's whole agency)."""
    membership = _reader(request)
    if creator_id is not None:
        _creator(membership, creator_id)
        return selectors.track_record(agency_id=membership.agency_id, creator_id=creator_id)
    return selectors.track_record(agency_id=membership.agency_id, creator_ids=_visible_ids(membership))


# --- Stored anomalies ------------------------------------------------------------------------------------


@router.get("/optimization/anomalies", response=list[AnomalyOut])
@paginate(page_size=25)
def anomaly_list(
    request: HttpRequest,
    creator_id: Id | None = None,
    status: AnomalyStatusName | None = None,
    days: int = Query(30, ge=1, le=366, description="How far back, in days."),
):
    """Anomalies the nightly run stored, newest first."""
    membership = _reader(request)
    creator_ids = [_creator(membership, creator_id).pk] if creator_id is not None else _visible_ids(membership)
    anomalies = selectors.recent_anomalies(agency_id=membership.agency_id, creator_ids=creator_ids, days=days)
    return anomalies.filter(status=status) if status else anomalies


@router.get("/optimization/service-anomalies", response=list[ServiceAnomalyOut])
@paginate(page_size=25)
def service_anomaly_list(
    request: HttpRequest, days: int = Query(30, ge=1, le=366, description="How far back, in days.")
):
    """Hours in which the agency's AI cost per hour (owners and managers) and the platform's request
    rate, server error rate or p95 latency (staff) left its expected range, newest first: what the
    anomalies page shows the same member (``selectors.service_anomaly_scope``)."""
    membership = _reader(request)
    agency, platform = selectors.service_anomaly_scope(membership=membership, user=membership.user)
    if not (agency or platform):  # as monitoring's alerts on them reach neither
        raise PermissionDenied("Service anomalies are for owners, managers and staff.")
    return selectors.service_anomaly_list(
        agency_id=membership.agency_id, include_agency=agency, include_platform=platform, days=days
    )


@router.post("/optimization/anomalies/{anomaly_id}/acknowledge", response=AnomalyOut)
def anomaly_acknowledge(request: HttpRequest, anomaly_id: Id):
    """Mark an anomaly as seen (again: no change)."""
    return services.anomaly_acknowledge(membership=api_membership(request), anomaly_id=anomaly_id)


# --- Settings ----------------------------------------------------------------------------------------------


def _settings_out(row: OptimizationSettings, creator: Creator | None) -> dict:
    if row.pk is None:
        source = "default"
    elif row.creator_id is not None:
        source = "creator"
    else:
        source = "agency"
    return {
        "creator_id": creator.pk if creator else None,
        "strategy": row.strategy,
        "risk": row.risk,
        "sensitivity": row.sensitivity,
        "explore_prices": row.explore_prices,
        "source": source,
        "updated_at": row.updated_at,
    }


def _agency_default(agency_id: int) -> OptimizationSettings:
    default, _overrides = selectors.settings_for_agency(agency_id)
    return default or OptimizationSettings(agency_id=agency_id)


@router.get("/optimization/settings", response=SettingsOut)
def settings_detail(request: HttpRequest, creator_id: Id | None = None):
    """The settings in force for a creator (their own, else the agency's, else the defaults), or
    the agency default without ``creator_id``."""
    membership = _reader(request)
    if creator_id is None:
        return _settings_out(_agency_default(membership.agency_id), None)
    creator = _creator(membership, creator_id)
    return _settings_out(selectors.effective_settings(creator), creator)


@router.put("/optimization/settings", response=SettingsOut)
def settings_update(request: HttpRequest, payload: SettingsIn):
    """Set the agency default, or one creator's override with ``creator_id``."""
    membership = api_membership(request)
    require(membership, Perm.EDIT)
    creator = _creator(membership, payload.creator_id) if payload.creator_id is not None else None
    with fields_renamed(API_FIELDS):
        row = services.settings_update(
            membership=membership,
            creator=creator,
            strategy=payload.strategy,
            risk=payload.risk,
            sensitivity=payload.sensitivity,
            explore_prices=payload.explore_prices,
        )
    return _settings_out(row, creator)


# --- Offers --------------------------------------------------------------------------------------------------


@router.get("/optimization/offers", response=list[OfferOut])
@paginate(page_size=25)
def offer_list(request: HttpRequest, creator_id: Id | None = None):
    """PPV offers and what they earned, newest first: the pricing engine's evidence."""
    membership = _reader(request)
    creator_ids = [_creator(membership, creator_id).pk] if creator_id is not None else _visible_ids(membership)
    return selectors.offer_list(agency_id=membership.agency_id, creator_ids=creator_ids)


@router.post("/optimization/offers", response={201: OfferOut, 409: ErrorOut})
def offer_create(request: HttpRequest, payload: OfferIn):
    """Record a PPV offer (price above $0, unlocks at most the recipients: 422 naming the field)."""
    membership = api_membership(request)
    require(membership, Perm.EDIT)
    creator = _creator(membership, payload.creator_id)
    with fields_renamed(API_FIELDS):
        offer = services.offer_record(
            membership=membership,
            creator=creator,
            price=payload.price,
            recipients=payload.recipients,
            unlocks=payload.unlocks,
            revenue=payload.revenue,
            sent_at=payload.sent_at,
            currency=payload.currency,
            external_id=payload.external_id,
        )
    return Status(201, offer)
