"""Answer normalisation shared by the tasks: numbers with commas, signs, decimals and currency."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# A number as people write it: optional sign (not the hyphen of "3-4" or the plus of "3+4"), optional $
# before or after the sign, thousands separators, decimals ("1,234.50", "-$5", "$-5", "+18", ".5"). A
# trailing sentence period is not a decimal point.
_SIGNED = r"(?<![\w.])(?:[-+]\$?\s?|\$\s?[-+]?)?"
NUMBER = _SIGNED + r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|" + _SIGNED + r"\.\d+"
NUMBER_RE = re.compile(NUMBER)


def normalize_number(text: str | None) -> str | None:
    """Canonical string of a number: '1,234.50' -> '1234.5', '$-3' -> '-3', '+18' -> '18', '12.0' -> '12'.
    Decimals are kept (the reference truncates them at the first '.': rationalyst.md 6.4)."""
    if text is None:
        return None
    cleaned = text.strip().replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    if cleaned.startswith("+"):
        cleaned = cleaned[1:]
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    value = value.normalize()
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    out = format(value, "f")
    return "0" if out in ("-0", "0") else out


def numbers_in(text: str) -> list[str]:
    return [m.group(0) for m in NUMBER_RE.finditer(text)]


def last_number(text: str) -> str | None:
    found = numbers_in(text)
    return normalize_number(found[-1]) if found else None
