"""Display rates in the ledger database: the last rates the ``rates-refresh`` job fetched.

Kept apart from the money tables on purpose: nothing in the ledger reads them, and no
amount is ever stored converted. One row per (currency, quote), replaced as a set.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from casino_app.core.db import LedgerBase


class DisplayRate(LedgerBase):
    __tablename__ = "display_rates"

    currency: Mapped[str] = mapped_column(String(8), primary_key=True)
    quote: Mapped[str] = mapped_column(String(8), primary_key=True)
    # A decimal string ("3012.45"): rates are Decimal end to end, never float.
    rate: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(100))
    fetched_at: Mapped[datetime] = mapped_column(DateTime)
