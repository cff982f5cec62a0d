"""The shared CSV helpers: cells a spreadsheet would evaluate are neutralised; amounts people type are read."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.core.csvfiles import csv_safe, parse_money


@pytest.mark.parametrize("cell", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=x", "\r=x"])
def test_formula_cells_are_prefixed(cell):
    assert csv_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Alice", "", "1=1", Decimal("-5.00"), None, 3])
def test_other_cells_are_unchanged(cell):
    assert csv_safe(cell) == cell


@pytest.mark.parametrize(
    ("text", "amount"), [("12,50", "12.50"), ("$1,234.5", "1234.50"), ("€ 7", "7.00"), ("0.005", "0.01")]
)
def test_amounts_people_type(text, amount):
    assert parse_money(text, max_value=Decimal("99999")) == (Decimal(amount), None)


@pytest.mark.parametrize(("text", "problem"), [("ten", "not an amount"), ("-3", "0 or more"), ("NaN", "not an amount"),
                                               ("100000", "Too large")])  # fmt: skip
def test_bad_amounts_say_why(text, problem):
    amount, message = parse_money(text, max_value=Decimal("99999"))
    assert amount is None and problem in message
