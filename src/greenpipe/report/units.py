"""Figures as a person reads them: SI prefixes, 3 significant digits ("44.3 mJ", "1.23 kJ").

One rule for every energy in the reports: joules with an SI prefix (mJ, J, kJ, MJ, ...),
never watt-hours, so that every column compares at a glance; `RULE` states it in the notes.
"""

from __future__ import annotations

import math

# exponent of 1000 -> prefix: the whole SI range, so no real figure is shown as 4.4e-08
PREFIXES = {
    -10: "q",
    -9: "r",
    -8: "y",
    -7: "z",
    -6: "a",
    -5: "f",
    -4: "p",
    -3: "n",
    -2: "µ",
    -1: "m",
    0: "",
    1: "k",
    2: "M",
    3: "G",
    4: "T",
    5: "P",
    6: "E",
    7: "Z",
    8: "Y",
    9: "R",
    10: "Q",
}
RULE = (
    "Units: energies in joules with SI prefixes (1 mJ = 0.001 J, 1 kJ = 1,000 J, 1 MJ = "
    "10^6 J; 1 Wh = 3.6 kJ, 1 kWh = 3.6 MJ), emissions in grams of CO2-equivalent likewise "
    "(mgCO2e, gCO2e, kgCO2e), each at 3 significant digits."
)


def si(value: float | None, unit: str, digits: int = 3, sign: bool = False) -> str:
    """`value` (in `unit`, e.g. J) with an SI prefix and `digits` significant digits:
    si(0.0443, "J") == "44.3 mJ", si(1234, "J") == "1.23 kJ", si(None, "J") == "n/a".
    `sign` writes "+" before positive values (differences)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    plus = "+" if sign and value > 0 else ""
    if value == 0:
        return f"{plus}0 {unit}"
    # from the rounded decimal text, so 999.96 J is "1.00 kJ" (not "1000 J") and no float
    # division can turn 1.00 into 0.99999
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    power = math.floor(int(exponent) / 3)
    if power not in PREFIXES:  # beyond quetta/quecto: no prefix reads better than 1e40
        return f"{plus}{mantissa}e{int(exponent)} {unit}"
    shift = int(exponent) - 3 * power  # 0, 1 or 2
    scaled = float(mantissa) * 10**shift
    return f"{plus}{scaled:.{max(digits - 1 - shift, 0)}f} {PREFIXES[power]}{unit}"


def si_pm(mean: float | None, spread: float | None, unit: str) -> str:
    """ "mean ± spread", the prefix written once where both share it ("73.6 ± 3.29 mJ",
    "1.20 J ± 150 mJ"); the mean alone without a spread, "n/a" without a mean."""
    if mean is None:
        return "n/a"
    if spread is None:
        return si(mean, unit)
    m, s = si(mean, unit), si(spread, unit)
    number, _, prefixed = m.rpartition(" ")
    return f"{number} ± {s}" if number and s.endswith(f" {prefixed}") else f"{m} ± {s}"


def ratio(after: float | None, before: float | None) -> str:
    """after / before as "0.91x" (2 decimals, 3 significant digits from 10x), or "n/a"."""
    if after is None or not before:
        return "n/a"
    r = after / before
    return f"{r:.2f}x" if abs(r) < 10 else f"{r:.3g}x"
