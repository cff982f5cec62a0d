"""The shared CSV helpers: cells a spreadsheet would evaluate are neutralised; amounts people type are read."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import pytest

from apps.core.csvfiles import csv_rows, csv_safe, parse_count, parse_datetime, parse_money
from apps.core.errors import ApplicationError


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


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_rows_end_at_any_line_ending(ending):
    # "\r" alone: Excel for Mac's "CSV (Macintosh)"; csv refuses it unless it reads with newline="".
    text = ending.join(["day,tips", "2026-01-01,5", '2026-01-02,"1,200"']) + ending
    assert list(csv_rows(text)) == [["day", "tips"], ["2026-01-01", "5"], ["2026-01-02", "1,200"]]


def test_a_quote_that_never_closes_is_an_error_on_the_file_naming_its_line():
    text = 'day,tips\n2026-01-01,5\n"2026-01-02,5\n' + "2026-01-03,5\n" * 12_000  # past csv's field limit
    rows = csv_rows(text)
    assert next(rows) == ["day", "tips"] and next(rows) == ["2026-01-01", "5"]
    with pytest.raises(ApplicationError) as error:
        list(rows)
    assert error.value.field == "file"
    assert "could not be read as CSV" in error.value.message and "closing quote" in error.value.message


@pytest.mark.parametrize(
    ("text", "year"), [("2026-03-01T20:30:00", 2026), ("2000-01-01", 2000), ("2200-12-31T23:00:00Z", 2200)]
)
def test_dates_people_type_within_the_years_the_database_holds(text, year):
    assert parse_datetime(text, UTC).year == year


@pytest.mark.parametrize("text", ["0001-01-01", "0001-01-01T00:00:00+05:45", "1999-12-31T23:59:59Z", "9999-12-31"])
def test_dates_outside_those_years_are_not_read(text):
    assert parse_datetime(text, UTC) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1" * 5000, (0, "Too large.")),  # beyond Python's 4,300-digit int() limit: a ValueError, a 500 before
        ("-" + "1" * 5000, (0, "Must be 0 or more.")),
        ("0" * 5000 + "7", (7, None)),
        ("2147483648", (0, "Too large.")),
        ("1,234", (1234, None)),
    ],
)
def test_a_count_of_thousands_of_digits_is_an_answer_not_an_error(text, expected):
    assert parse_count(text) == expected
