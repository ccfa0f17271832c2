"""Small helpers of the economy tests: give members points or tokens the way the ledger does."""

from __future__ import annotations

from itertools import count

from sapien.i18n import TOKEN_UNIT
from sapien.ledger import service as ledger

from .conftest import NOW

T = TOKEN_UNIT  # one token in base units
_keys = count(1)


def give(user_id: int, currency: str, amount: int, now=NOW) -> None:
    ledger.credit(user_id, currency, amount, kind="test", key=f"test:{next(_keys)}", now=now)
