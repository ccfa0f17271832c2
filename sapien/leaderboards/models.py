from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db


class BoardFreeze(db.Model):
    """A board frozen by a moderator (end of a season): the public sees it as of `frozen_at`.

    The row is the truth; the frozen copy in Redis is rebuilt from the ledger entries up to `frozen_at`.
    """

    __tablename__ = "board_freezes"

    id: Mapped[int] = mapped_column(primary_key=True)
    board: Mapped[str] = mapped_column(String(120), unique=True)  # a resolved board name, e.g. "xp:all:s2026-Q4"
    frozen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    frozen_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
