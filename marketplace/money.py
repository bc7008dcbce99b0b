"""Money arithmetic: the one rounding rule of Wizamart and VAT included in gross prices."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def round_money(amount: Decimal) -> Decimal:
    """Round half-up to the cent. Every amount we store or show goes through here."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def vat_included(gross: Decimal, rate: Decimal) -> Decimal:
    """The VAT contained in a gross (VAT-included) amount at `rate` percent, rounded."""
    gross = Decimal(gross)
    return round_money(gross - gross / (1 + Decimal(rate) / 100))
