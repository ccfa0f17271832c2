from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from sapien.forms import ChoiceField
from sapien.progression.badges import CATALOGUE
from sapien.progression.quests import OBJECTIVE_LABELS, PERIOD_LABELS, SCOPE_LABELS


def _badge_choices(blank: bool):
    choices = [(badge.slug, f"{badge.name} ({badge.tier})") for badge in CATALOGUE]
    return ([("", _l("No badge"))] if blank else []) + choices


class QuestForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(message=_l("Give the quest a title.")), Length(max=120)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])
    period = ChoiceField(_l("Period"), choices=list(PERIOD_LABELS.items()))
    objective = ChoiceField(_l("Objective"), choices=list(OBJECTIVE_LABELS.items()))
    scope = ChoiceField(_l("Scope"), choices=list(SCOPE_LABELS.items()), default="member")
    task_type = StringField(_l("Task type (labeling quests; empty for any)"), validators=[Optional(), Length(max=48)])
    target = IntegerField(
        _l("Target"),
        validators=[InputRequired(message=_l("Give a whole-number target.")), NumberRange(min=1, message=_l("The target must be at least 1."))],
    )
    accuracy_percent = IntegerField(_l("Gold accuracy to reach (%)"), validators=[Optional()])
    reward_points = IntegerField(_l("Reward: points"), default=0, validators=[Optional()])
    reward_xp = IntegerField(_l("Reward: XP"), default=0, validators=[Optional()])
    reward_freezes = IntegerField(_l("Reward: streak freezes"), default=0, validators=[Optional()])
    reward_badge = ChoiceField(_l("Reward: badge"), choices=_badge_choices(blank=True), default="")
    starts_at = DateTimeLocalField(
        _l("Starts (UTC)"), format="%Y-%m-%dT%H:%M", validators=[InputRequired(message=_l("Give a start date and time."))]
    )
    ends_at = DateTimeLocalField(_l("Ends (UTC)"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    is_active = BooleanField(_l("Active"), default=True)


class AwardBadgeForm(FlaskForm):
    username = StringField(_l("Member's username"), validators=[DataRequired(message=_l("Whose badge is it?")), Length(max=32)])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(message=_l("Give a reason.")), Length(max=1000)])


class RevokeBadgeForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(message=_l("Give a reason.")), Length(max=1000)])
