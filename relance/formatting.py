"""French formatting of amounts, numbers, rates and dates.

Used by the invoice PDF, the e-mail texts and the portal, so that a figure
reads the same everywhere: ``1 234,56 €``, ``5,5 %``, ``03/12/2026``,
``3 décembre 2026``.

Separator choice: fr-FR (CLDR) groups thousands with a narrow no-break space
(U+202F) and puts a no-break space before € and %. The invoice PDF is drawn
with the standard PDF fonts (Helvetica, WinAnsi encoding), which have no glyph
for U+202F: it would print as a black box or vanish. So we use the plain
no-break space U+00A0 for both the thousands separator and the space before
the unit. It exists in every font, and it still prevents a line break inside
an amount ("1 234,56 €" never ends up split over two lines).

Everything returns ``""`` for ``None`` so templates can format optional
values without ``{% if %}`` around them; a value that is not a number raises
``ValueError`` (the template filters catch it, see ``templatetags``).
"""

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils import timezone

NBSP = "\u00a0"
DECIMAL_SEPARATOR = ","
THOUSANDS_SEPARATOR = NBSP
CURRENCY = "€"

MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)

# Quantizers built once: money formatting runs for every line of thousands of invoices.
_QUANTUM = {places: Decimal(1).scaleb(-places) for places in range(0, 9)}


def _quantum(places):
    return _QUANTUM.get(places) or Decimal(1).scaleb(-places)


def to_decimal(value):
    """Coerce ``value`` to Decimal; floats go through ``str`` to avoid binary noise."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"Valeur numérique attendue, reçu {value!r}.")
    elif isinstance(value, int):
        result = Decimal(value)
    else:
        try:
            result = Decimal(str(value).strip().replace(NBSP, "").replace(" ", "").replace(",", "."))
        except InvalidOperation:
            raise ValueError(f"Valeur numérique attendue, reçu {value!r}.") from None
    if not result.is_finite():
        raise ValueError(f"Valeur numérique attendue, reçu {value!r}.")
    return result


def _group(digits):
    """'1234567' -> '1 234 567' (with no-break spaces)."""
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i:i + 3] for i in range(head, len(digits), 3)]
    return THOUSANDS_SEPARATOR.join(parts)


def number(value, places=2, max_places=None):
    """French number: ``number(Decimal("1234.5")) == "1 234,50"``.

    Rounded half-up (the commercial rule, not banker's rounding) to
    ``places`` decimals. With ``max_places``, rounds to ``max_places`` and
    then drops trailing zeros down to ``places``: ``number("1.500", 0, 3)``
    is ``"1,5"`` — the right thing for quantities and unit prices that may
    carry more decimals than cents.
    """
    if value is None or value == "":
        return ""
    value = to_decimal(value)
    places = int(places)
    rounding_places = max(places, int(max_places)) if max_places is not None else places
    value = value.quantize(_quantum(rounding_places), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    text = f"{abs(value):f}"
    integer, _, decimals = text.partition(".")
    if max_places is not None:
        decimals = decimals.rstrip("0")
        decimals = decimals + "0" * (places - len(decimals))
    if sign and not decimals.strip("0") and not integer.strip("0"):
        sign = ""  # -0,00 after rounding is just 0,00
    result = sign + _group(integer)
    if decimals:
        result += DECIMAL_SEPARATOR + decimals
    return result


def money(value, places=2):
    """Euro amount: ``money(Decimal("1234.565")) == "1 234,57 €"`` (no-break spaces)."""
    if value is None or value == "":
        return ""
    return f"{number(value, places)}{NBSP}{CURRENCY}"


def quantity(value):
    """Quantity with only the significant decimals (up to 3): ``"2"``, ``"1,5"``, ``"0,125"``."""
    return number(value, 0, 3)


def unit_price(value):
    """Unit price: at least cents, up to 4 decimals when the ERP stored them."""
    return number(value, 2, 4)


def percent(value):
    """VAT-style rate: ``percent(20) == "20 %"``, ``percent(Decimal("5.50")) == "5,5 %"``."""
    if value is None or value == "":
        return ""
    return f"{number(value, 0, 4)}{NBSP}%"


def _as_date(value):
    if isinstance(value, datetime):
        # An aware datetime is shown in the local (Europe/Paris) day, not the UTC one.
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.date()
    if isinstance(value, date):
        return value
    raise ValueError(f"Date attendue, reçu {value!r}.")


def date_fr(value):
    """``date(2026, 12, 3) -> "03/12/2026"``."""
    if value is None or value == "":
        return ""
    value = _as_date(value)
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


def date_long_fr(value):
    """``date(2026, 12, 3) -> "3 décembre 2026"``; the first of the month is "1er"."""
    if value is None or value == "":
        return ""
    value = _as_date(value)
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {MONTHS[value.month - 1]} {value.year}"
