from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DecimalField, IntegerField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from sapien.arena.prizes import TOKEN_UNIT, PoolSettings


class ChallengeForm(FlaskForm):
    username = StringField(_l("Member to challenge"), validators=[DataRequired(message=_l("Name the member you want to duel.")), Length(max=40)])


class PoolForm(FlaskForm):
    budget = DecimalField(_l("Prize pool budget (tokens)"), places=4,
                          validators=[DataRequired(message=_l("Give a budget, 0 or more.")), NumberRange(min=0, max=10**9)])
    prize = DecimalField(_l("Prize per win (tokens)"), places=4, validators=[Optional(), NumberRange(min=0, max=1_000_000)])
    entry_fee = IntegerField(_l("Entry fee (points)"), validators=[Optional(), NumberRange(min=0, max=100_000)])

    def settings(self) -> PoolSettings:
        def units(value) -> int:
            return int(Decimal(value or 0) * TOKEN_UNIT)

        return PoolSettings(budget_tokens=units(self.budget.data), prize_tokens=units(self.prize.data), entry_fee_points=self.entry_fee.data or 0)


class SeasonForm(FlaskForm):
    name = StringField(_l("Name of the new season"), validators=[Optional(), Length(max=80)])


class ClashForm(FlaskForm):
    guild = StringField(_l("Guild to challenge"), validators=[DataRequired(message=_l("Name the guild you want to challenge.")), Length(max=48)])
