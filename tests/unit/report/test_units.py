"""greenpipe.report.units: figures with SI prefixes at 3 significant digits."""

from __future__ import annotations

import math
import re

import pytest

from greenpipe.report.units import ratio, si, si_pm


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-9, "1.00 nJ"),
        (4.433e-08, "44.3 nJ"),
        (1.5e-7, "150 nJ"),
        (2.5e-6, "2.50 µJ"),
        (0.0443, "44.3 mJ"),
        (0.1, "100 mJ"),
        (1.0, "1.00 J"),
        (12.34, "12.3 J"),
        (123.4, "123 J"),
        (1234, "1.23 kJ"),
        (3.6e6, "3.60 MJ"),
        (1e9, "1.00 GJ"),
    ],
)
def test_si_picks_the_prefix_and_three_significant_digits(value, text):
    assert si(value, "J") == text


def test_zero_negative_and_missing():
    assert si(0, "J") == "0 J" and si(0.0, "gCO2e") == "0 gCO2e"
    assert si(-0.0443, "J") == "-44.3 mJ" and si(-1234, "J") == "-1.23 kJ"
    assert si(None, "J") == "n/a" and si(math.nan, "J") == "n/a"


def test_rounding_moves_to_the_next_prefix_instead_of_showing_four_digits():
    assert si(999.96, "J") == "1.00 kJ" and si(999.4, "J") == "999 J"
    assert si(0.99999999, "J") == "1.00 J"  # no float division turns 1.00 into 0.999


def test_every_value_from_1e_minus_9_to_1e9_reads_in_three_digits_below_1000():
    for exponent in range(-9, 10):
        for mantissa in (1.0, 2.345, 9.994):
            text = si(mantissa * 10.0**exponent, "J")
            number, unit = text.split(" ")
            assert 1 <= float(number) < 1000 and unit.endswith("J"), text
            assert len(number.replace(".", "")) == 3, text
            assert "e" not in number, text


def test_sign_and_other_units():
    assert si(12.3, "J", sign=True) == "+12.3 J" and si(-12.3, "J", sign=True) == "-12.3 J"
    assert si(0, "J", sign=True) == "0 J"
    assert si(0.00203, "gCO2e") == "2.03 mgCO2e" and si(1500, "gCO2e") == "1.50 kgCO2e"


def test_beyond_the_si_range_falls_back_to_an_exponent():
    assert re.fullmatch(r"5\.00e-40 J", si(5e-40, "J"))
    assert si(1e-30, "J") == "1.00 qJ" and si(9.99e32, "J") == "999 QJ"


def test_mean_and_spread_share_the_prefix_when_they_can():
    assert si_pm(0.0736, 0.00329, "J") == "73.6 ± 3.29 mJ"
    assert si_pm(1.2, 0.15, "J") == "1.20 J ± 150 mJ"
    assert si_pm(1.2, None, "J") == "1.20 J" and si_pm(None, 0.1, "J") == "n/a"


def test_ratio():
    assert ratio(0.91, 1.0) == "0.91x" and ratio(25, 1) == "25x" and ratio(123.4, 1) == "123x"
    assert ratio(None, 1) == "n/a" and ratio(1, 0) == "n/a" and ratio(1, None) == "n/a"
