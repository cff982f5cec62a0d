"""Chart geometry: numbers in, coordinates and labels out; values carried as text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pytest

from apps.optimization import charts


@dataclass
class Point:
    price: float
    mean: float
    lower: float
    upper: float


@dataclass
class Slot:
    weekday: int
    hour: int


@dataclass
class Flag:
    day: date
    value: float
    expected_low: float
    expected_high: float
    severity: str


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (0.3, 0.5), (7, 10), (12, 20), (180, 200), (240, 250)])
def test_nice_ceiling(value, ceiling):
    assert charts.nice_ceiling(value) == ceiling


def test_money_labels():
    assert charts.money_label(14) == "$14"
    assert charts.money_label(12.5) == "$12.50"
    assert charts.money_label(2.09) == "$2.09"
    assert charts.money_label(1530) == "$1.5k"


def test_demand_curve_places_band_lines_offers_and_the_recommendation():
    curve = [Point(p, 0.5 * np.exp(-p / 12), 0.4 * np.exp(-p / 12), 0.6 * np.exp(-p / 12)) for p in (5, 10, 14, 20, 30)]
    chart = charts.demand_curve(curve, recommended_price=14, own_offers=[(10, 200, 60), (20, 100, 0), (9, 0, 0)])
    assert len(chart["rate_line"].split()) == 5 and len(chart["band"].split()) == 10
    assert len(chart["offers"]) == 2  # an offer to nobody is left out
    assert chart["offers"][0]["title"] == "$10 to 200 fans: 60 unlocks (30%)"
    assert chart["recommended"]["label"] == "$14"
    xs = [float(pair.split(",")[0]) for pair in chart["rate_line"].split()]
    assert xs == sorted(xs) and xs[0] == charts.LEFT and xs[-1] == charts.WIDTH - charts.RIGHT
    assert chart["rate_ticks"][-1]["label"] == "50%" and chart["revenue_ticks"][0]["label"] == "$0.00"
    for tick in chart["x_ticks"]:
        assert charts.LEFT <= tick["x"] <= charts.WIDTH - charts.RIGHT


def test_demand_curve_without_points_is_empty():
    assert charts.demand_curve([]) == {}


def test_heat_map_shades_ranks_and_titles_every_cell():
    rates = np.ones((7, 24))
    rates[5, 21] = 4.0
    rates[4, 20] = 3.0
    chart = charts.heat_map(rates, [Slot(5, 21), Slot(4, 20)], unit="engagement per post")
    assert len(chart["cells"]) == 168
    best = next(c for c in chart["cells"] if c["rank"] == 1)
    assert best["title"] == "Sat 21:00: 4 engagement per post" and best["fill"] == charts.HEAT_SCALE[-1]
    assert next(c for c in chart["cells"] if c["rank"] == 2)["title"].startswith("Fri 20:00")
    assert chart["legend"][0]["label"] == "1" and chart["legend"][-1]["label"] == "4"
    assert charts.heat_map(np.ones((24, 7))) == {}


def test_heat_map_of_a_flat_week_does_not_divide_by_zero():
    chart = charts.heat_map(np.full((7, 24), 2.0))
    assert {cell["fill"] for cell in chart["cells"]} == {charts.HEAT_SCALE[0]}


def test_anomaly_series_breaks_at_gaps_and_marks_flags_with_their_range():
    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(10)]
    values = [10, 11, np.nan, 12, 11, 40, 12, 11, 10, 12]
    flag = Flag(days[5], 40, 8, 15, "high")
    chart = charts.anomaly_series(days, values, [flag, Flag(date(2025, 1, 1), 1, 0, 2, "low")])
    assert len(chart["segments"]) == 2
    assert len(chart["marks"]) == 1  # a flag outside the window is not drawn
    mark = chart["marks"][0]
    assert mark["label"] == "Nov 6: $40 (expected $8.00 to $15)"
    assert mark["y"] < mark["high_y"] < mark["low_y"]  # above the range (SVG y grows downwards)
    assert mark["colour"] == charts.PALETTE[5]


def test_anomaly_series_of_no_data_is_empty():
    assert charts.anomaly_series([], []) == {}
    assert charts.anomaly_series([date(2026, 1, 1)], [np.nan]) == {}
