"""Geometry for the cost page's server-rendered SVG charts: numbers in, coordinates and labels
out; the templates draw them (templates/monitoring/cost/). Every chart carries its values as
text (axis ticks, a legend, totals on the bars, the forecast's range), so nothing needs a hover,
and each sits above the table it is drawn from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from apps.monitoring.cost import Forecast, SpendReport

# Distinguishable on white, and for the common colour-vision deficiencies (Okabe and Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 12, 24, 30


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times 10^k at or above ``value`` (an axis maximum)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power


def _money_label(value: float) -> str:
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.3f}" if value else "$0"


@dataclass
class Axis:
    top: float
    ticks: list[dict[str, Any]] = field(default_factory=list)

    def y(self, value: float) -> float:
        plot = HEIGHT - TOP - BOTTOM
        return round(TOP + plot - (value / self.top) * plot, 2)


def _axis(maximum: float) -> Axis:
    axis = Axis(top=nice_ceiling(maximum))
    for i in range(5):
        value = axis.top * i / 4
        axis.ticks.append({"y": axis.y(value), "label": _money_label(value)})
    return axis


def daily_bars(report: SpendReport) -> dict[str, Any]:
    """Stacked bars: one per day of the month, one segment per provider (legend order)."""
    providers = [share.key for share in report.providers]
    colours = {provider: PALETTE[i % len(PALETTE)] for i, provider in enumerate(providers)}
    totals = [float(report.by_day.get(day, 0)) for day in report.days]
    axis = _axis(max(totals, default=0))
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(report.days))
    bars = []
    for i, day in enumerate(report.days):
        x = LEFT + i * slot + slot * 0.15
        base = 0.0
        segments = []
        for provider in providers:
            value = float(report.by_day_provider.get(day, {}).get(provider, Decimal(0)))
            if value <= 0:
                continue
            y_top, y_base = axis.y(base + value), axis.y(base)
            segments.append({
                "y": y_top, "height": round(max(0.5, y_base - y_top), 2), "fill": colours[provider],
                "title": f"{day:%b %-d} · {provider}: ${value:.4f}",
            })  # fmt: skip
            base += value
        bars.append({
            "x": round(x, 2), "width": round(slot * 0.7, 2), "segments": segments,
            "label_x": round(x + slot * 0.35, 2), "total": totals[i], "total_label": _money_label(totals[i]),
            "total_y": round(axis.y(totals[i]) - 4, 2), "day": day.day, "show_day": day.day == 1 or day.day % 2 == 1,
        })  # fmt: skip
    return {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "bottom": HEIGHT - BOTTOM,
        "axis": axis, "bars": bars, "day_y": HEIGHT - BOTTOM + 16,
        "legend": [{"name": share.key, "fill": colours[share.key], "total": share.cost} for share in report.providers],
    }  # fmt: skip


def forecast_band(report: SpendReport, forecast: Forecast, budget: Decimal | None = None) -> dict[str, Any]:
    """Cumulative spend so far (a line), the projection to the month's end (a dashed line) inside
    its band (a shaded polygon), and the agency-wide budget (a horizontal line) when there is one."""
    days = report.days
    index = {day: i for i, day in enumerate(days)}
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(days) - 1)

    def x(day: date) -> float:
        return round(LEFT + index[day] * slot, 2)

    cumulative, running = [], 0.0
    last_actual = days[-1] if forecast.complete else None
    for day in days:
        if not forecast.complete and forecast.path and day >= forecast.path[0][0]:
            break
        running += float(report.by_day.get(day, 0))
        cumulative.append((day, running))
        last_actual = day
    highs = [float(high) for _, _, _, high in forecast.path]
    top = max([running, float(forecast.high), *(highs or [0]), float(budget or 0)])
    axis = _axis(top)
    actual_points = " ".join(f"{x(day)},{axis.y(value)}" for day, value in cumulative)
    band_points = ""
    mid_points = ""
    if forecast.path:
        start = [(cumulative[-1][0], cumulative[-1][1])] if cumulative else []
        uppers = start + [(day, float(high)) for day, _, _, high in forecast.path]
        lowers = start + [(day, float(low)) for day, _, low, _ in forecast.path]
        band_points = " ".join(f"{x(d)},{axis.y(v)}" for d, v in uppers + lowers[::-1])
        mids = start + [(day, float(mid)) for day, mid, _, _ in forecast.path]
        mid_points = " ".join(f"{x(d)},{axis.y(v)}" for d, v in mids)
    ticks = [day for day in days if day.day in (1, 8, 15, 22) or day == days[-1]]
    return {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "bottom": HEIGHT - BOTTOM,
        "axis": axis, "actual": actual_points, "band": band_points, "projection": mid_points,
        "x_ticks": [{"x": x(day), "label": f"{day:%b %-d}"} for day in ticks], "day_y": HEIGHT - BOTTOM + 16,
        "budget_y": axis.y(float(budget)) if budget else None, "budget_label": _money_label(float(budget or 0)),
        "end_x": x(days[-1]), "end_y": axis.y(float(forecast.projected)),
        "last_actual": last_actual,
    }  # fmt: skip


def gauge(progress: dict[str, Any]) -> dict[str, Any]:
    """One budget's bar: the spent share (capped at the end), threshold ticks, the numbers."""
    width = 400
    thresholds = [
        {"x": round(min(pct, 100) / 100 * width, 2), "label": f"{pct}%"}
        for pct in progress["budget"].thresholds or []
        if pct <= 100
    ]
    colour = "#b3261e" if progress["over"] else ("#8a5a00" if progress["warn"] else "#1b7a3d")
    return {"width": width, "fill": round(progress["bar"] / 100 * width, 2), "colour": colour, "ticks": thresholds}
