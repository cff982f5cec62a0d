"""Geometry for the optimization pages' server-rendered SVG charts: numbers in, coordinates and
labels out; the templates draw them (templates/optimization/partials/). Every chart carries its
values as text (axis ticks, a legend, the recommended price and its figures, each cell's value in
its title, the top slots numbered), and each sits next to a table of the same numbers, so nothing
needs a hover or colour vision.

What this deliberately does not do: compute anything the engines answer (curves, expected
ranges, best slots); it only places their numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np

# Distinguishable on white and for the common colour-vision deficiencies (Okabe and Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
# A single-hue sequential scale (light to dark blue): order reads without telling hues apart.
HEAT_SCALE = ("#f1f6fb", "#d4e4f2", "#a9cbe6", "#74acd6", "#4a8cc4", "#2a6aa8", "#114a86", "#08306b")
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 60, 20, 36
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times 10^k at or above ``value`` (an axis maximum)."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power


def money_label(value: float) -> str:
    if abs(value) >= 1000:
        return f"${value / 1000:,.1f}k"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 10 and abs(value - round(value)) < 0.005:
        return f"${value:,.0f}"
    return f"${value:,.2f}"


def _percent_label(value: float) -> str:
    return f"{value * 100:.0f}%" if value >= 0.1 or value == 0 else f"{value * 100:.1f}%"


def _number_label(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value / 1000:,.1f}k"
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:,.1f}"


class _Scale:
    """A linear map from [low, high] onto [start, end] pixels."""

    def __init__(self, low: float, high: float, start: float, end: float):
        self.low, self.high, self.start, self.end = low, high, start, end

    def __call__(self, value: float) -> float:
        span = self.high - self.low or 1.0
        return round(self.start + (value - self.low) / span * (self.end - self.start), 2)


def demand_curve(
    curve: Sequence[Any],
    *,
    recommended_price: float | None = None,
    own_offers: Sequence[tuple[float, int, int]] = (),
) -> dict[str, Any]:
    """The pricing card's chart: unlock rate by price (a line inside its 80 % credible band, left
    axis) and revenue per recipient (price x rate, a dashed line, right axis), the creator's own
    offers as dots (unlock rate they reached), the recommended price as a vertical rule.

    ``curve``: points with ``price``, ``mean``, ``lower``, ``upper`` (pricing.CurvePoint);
    ``own_offers``: (price, recipients, unlocks). Price runs on a log scale, as the engine's bands do.
    """
    points = sorted(curve, key=lambda point: point.price)
    if not points:
        return {}
    prices = [float(p.price) for p in points]
    lo_price, hi_price = min(prices), max(prices)
    offers = [(float(price), recipients, unlocks) for price, recipients, unlocks in own_offers if recipients > 0]
    for price, _, _ in offers:
        lo_price, hi_price = min(lo_price, price), max(hi_price, price)
    x = _Scale(math.log(lo_price), math.log(max(hi_price, lo_price * 1.01)), LEFT, WIDTH - RIGHT)

    def px(price: float) -> float:
        return x(math.log(price))

    top_rate = nice_ceiling(max([p.upper for p in points] + [u / r for _, r, u in offers] + [0.01]))
    rate_y = _Scale(0, top_rate, HEIGHT - BOTTOM, TOP)
    revenues = [p.price * p.mean for p in points]
    top_revenue = nice_ceiling(max([*revenues, 0.01]))
    revenue_y = _Scale(0, top_revenue, HEIGHT - BOTTOM, TOP)

    band = [f"{px(p.price)},{rate_y(p.upper)}" for p in points] + [
        f"{px(p.price)},{rate_y(p.lower)}" for p in reversed(points)
    ]
    rate_line = " ".join(f"{px(p.price)},{rate_y(p.mean)}" for p in points)
    revenue_line = " ".join(f"{px(p.price)},{revenue_y(p.price * p.mean)}" for p in points)
    ticks_x = _price_ticks(prices)
    chart: dict[str, Any] = {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "top": TOP,
        "bottom": HEIGHT - BOTTOM, "band": " ".join(band), "rate_line": rate_line, "revenue_line": revenue_line,
        "rate_colour": PALETTE[0], "revenue_colour": PALETTE[5], "offer_colour": PALETTE[6],
        "x_ticks": [{"x": px(p), "label": money_label(p)} for p in ticks_x], "x_label_y": HEIGHT - BOTTOM + 16,
        "rate_ticks": [{"y": rate_y(top_rate * i / 4), "label": _percent_label(top_rate * i / 4)} for i in range(5)],
        "revenue_ticks": [
            {"y": revenue_y(top_revenue * i / 4), "label": money_label(top_revenue * i / 4)} for i in range(5)
        ],
        "offers": [
            {"x": px(price), "y": rate_y(unlocks / recipients),
             "title": f"{money_label(price)} to {recipients:,} fans: {unlocks:,} unlocks "
                      f"({_percent_label(unlocks / recipients)})"}
            for price, recipients, unlocks in offers
        ],
        "recommended": None,
    }  # fmt: skip
    if recommended_price is not None and recommended_price > 0:
        nearest = min(points, key=lambda p: abs(math.log(p.price / recommended_price)))
        rx = px(min(max(recommended_price, lo_price), hi_price))
        chart["recommended"] = {
            "x": rx, "label": money_label(recommended_price), "label_x": min(rx + 4, WIDTH - RIGHT - 40),
            "rate": _percent_label(nearest.mean), "revenue": money_label(nearest.price * nearest.mean),
        }  # fmt: skip
    return chart


def _price_ticks(prices: list[float]) -> list[float]:
    candidates = (3, 5, 7, 10, 14, 20, 30, 50, 75, 100, 150, 200)
    low, high = min(prices), max(prices)
    ticks = [p for p in candidates if low <= p <= high]
    return ticks or [low, high]


def heat_map(rates: np.ndarray, slots: Sequence[Any] = (), *, unit: str = "per post") -> dict[str, Any]:
    """The week heat map: 7 rows (Monday first) x 24 local hours, each cell shaded on a single-hue
    scale by its expected rate and titled with its value; the top slots outlined and numbered."""
    values = np.asarray(rates, dtype=float)
    if values.shape != (7, 24):
        return {}
    cell_w, cell_h, left, top = 22, 22, 40, 22
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 1.0
    span = (high - low) or 1.0
    ranks = {(slot.weekday, slot.hour): n + 1 for n, slot in enumerate(slots)}
    cells = []
    for weekday in range(7):
        for hour in range(24):
            value = values[weekday, hour]
            level = 0 if not math.isfinite(value) else int((value - low) / span * (len(HEAT_SCALE) - 1) + 0.5)
            rank = ranks.get((weekday, hour))
            shown = _number_label(value) if math.isfinite(value) else "no data"
            cells.append({
                "x": left + hour * cell_w, "y": top + weekday * cell_h, "fill": HEAT_SCALE[level],
                "title": f"{WEEKDAYS[weekday]} {hour:02d}:00: {shown} {unit}",
                "rank": rank, "dark": level >= len(HEAT_SCALE) // 2,
                "text_x": left + hour * cell_w + cell_w / 2, "text_y": top + weekday * cell_h + cell_h / 2 + 4,
            })  # fmt: skip
    width = left + 24 * cell_w + 8
    legend_y = top + 7 * cell_h + 26
    legend = [
        {"x": left + i * 34, "fill": colour, "label": _number_label(low + span * i / (len(HEAT_SCALE) - 1))}
        for i, colour in enumerate(HEAT_SCALE)
    ]
    return {
        "width": width, "height": legend_y + 30, "cell_w": cell_w, "cell_h": cell_h, "cells": cells,
        "rows": [{"y": top + d * cell_h + cell_h / 2 + 4, "label": WEEKDAYS[d]} for d in range(7)],
        "hours": [{"x": left + h * cell_w + cell_w / 2, "label": f"{h:02d}"} for h in range(0, 24, 3)],
        "legend": legend, "legend_y": legend_y, "legend_text_y": legend_y + 24, "left": left, "unit": unit,
    }  # fmt: skip


def anomaly_series(
    days: Sequence[date], values: Sequence[float], flagged: Sequence[Any] = (), *, money: bool = True
) -> dict[str, Any]:
    """A daily series (gaps break the line) with each flagged point's expected range drawn as a
    bar and the point itself marked and labelled. ``flagged``: objects with ``day`` (the creator's
    calendar day), ``value``, ``expected_low``, ``expected_high``, ``severity``."""
    series = np.asarray(values, dtype=float)
    if not len(days) or not np.isfinite(series).any():
        return {}
    label = money_label if money else _number_label
    index = {day: i for i, day in enumerate(days)}
    marks = []
    for point in flagged:
        if point.day in index:
            marks.append((index[point.day], point))
    top = float(np.nanmax(series))
    for _, point in marks:
        top = max(top, float(point.expected_high), float(point.value))
    axis_top = nice_ceiling(top)
    x = _Scale(0, max(1, len(days) - 1), LEFT, WIDTH - RIGHT)
    y = _Scale(0, axis_top, HEIGHT - BOTTOM, TOP)
    segments, current = [], []
    for i, value in enumerate(series):
        if math.isfinite(value):
            current.append(f"{x(i)},{y(value)}")
        elif current:
            segments.append(" ".join(current))
            current = []
    if current:
        segments.append(" ".join(current))
    step = max(1, len(days) // 6)
    colours = {"high": PALETTE[5], "medium": PALETTE[1], "low": PALETTE[3]}
    return {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "top": TOP, "bottom": HEIGHT - BOTTOM,
        "segments": segments, "line_colour": PALETTE[0], "x_label_y": HEIGHT - BOTTOM + 16,
        "y_ticks": [{"y": y(axis_top * i / 4), "label": label(axis_top * i / 4)} for i in range(5)],
        "x_ticks": [{"x": x(i), "label": f"{days[i]:%b %-d}"} for i in range(0, len(days), step)],
        "marks": [
            {"x": x(i), "y": y(float(p.value)), "low_y": y(float(p.expected_low)), "high_y": y(float(p.expected_high)),
             "colour": colours.get(str(p.severity), PALETTE[5]),
             "label": f"{days[i]:%b %-d}: {label(float(p.value))} "
                      f"(expected {label(float(p.expected_low))} to {label(float(p.expected_high))})"}
            for i, p in marks
        ],
    }  # fmt: skip
