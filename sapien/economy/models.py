from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sapien.extensions import db


class Parameter(db.Model):
    """The current value of one economic setting that differs from (or was once set over) its default.

    A setting without a row has its default (`economy.parameters.PARAMETERS`); a row is only written by
    `set_parameter`, together with its `ParameterChange`.
    """

    __tablename__ = "economy_parameters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[object] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ParameterChange(db.Model):
    """One change of a setting: the old and new value, who, why, when and, for a vote, which proposal.

    `proposal_id` is a plain column (governance's proposals live in a table economy does not know).
    """

    __tablename__ = "economy_parameter_changes"
    __table_args__ = (Index("ix_economy_parameter_changes_name_at", "name", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[object | None] = mapped_column(JSON)
    new_value: Mapped[object] = mapped_column(JSON)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    proposal_id: Mapped[int | None] = mapped_column(Integer)
