from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    ValidationError,
    widgets,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from sapien.forms import ChoiceField
from sapien.moderation.users import REASON_MAX

ROLE_LABELS = {
    "member": _l("Member"),
    "reviewer": _l("Reviewer"),
    "guild_leader": _l("Guild leader"),
    "moderator": _l("Moderator"),
    "admin": _l("Admin"),
}


class RoleForm(FlaskForm):
    role = ChoiceField(_l("Role"), validate_choice=True)
    reason = TextAreaField(_l("Reason (optional)"), validators=[Optional(), Length(max=REASON_MAX, message=_l("At most 500 characters."))])

    def __init__(self, roles: tuple[str, ...], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = [(role, ROLE_LABELS[role]) for role in roles]


class BanForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason"),
        validators=[DataRequired(_l("Give a reason: it goes into the audit log.")), Length(max=REASON_MAX, message=_l("At most 500 characters."))],
    )


# --- trust & safety ---------------------------------------------------------------------------------
ACTION_LABELS = {"dismiss": _l("Dismiss the flags"), "warn": _l("Warn"), "restrict": _l("Restrict"), "ban": _l("Ban")}
SCOPE_LABELS = {
    "labeling": _l("Labeling"), "pack": _l("One pack"), "review": _l("Reviewing"), "arena": _l("Arena"), "airdrops": _l("Airdrops"),
    "all": _l("Everything (ban)"),
}
REASON_MESSAGE = _l("Give a reason: it goes into the audit log and the member sees it.")


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()

    def pre_validate(self, form) -> None:
        values = {value for value, _label, _selected, _render in self.iter_choices()}
        if not self.data or any(item not in values for item in self.data):
            raise ValidationError(_l("Choose at least one member from the list."))


class DecisionForm(FlaskForm):
    members = MultiCheckboxField(_l("Members"), coerce=int)
    action = ChoiceField(_l("Decision"), choices=list(ACTION_LABELS.items()), validate_choice=True)
    scope = ChoiceField(_l("Restriction covers"), choices=[(key, SCOPE_LABELS[key]) for key in ("labeling", "pack", "review", "arena", "airdrops")],
                        validate_choice=True)
    pack_id = ChoiceField(_l("Pack (for a one-pack restriction)"), validate_choice=True, validators=[Optional()])
    days = IntegerField(_l("Days (for a restriction)"), default=7, validators=[Optional(), NumberRange(1, 365, message=_l("A restriction lasts 1 to 365 days."))])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(REASON_MESSAGE), Length(max=REASON_MAX, message=_l("At most 500 characters."))])
    undo = BooleanField(_l("Undo the damage now: reverse what they earned, re-queue and recompute the items they answered, re-open their reviews"))
    confirm_undo = BooleanField(_l("I confirm: undo the damage (it cannot be taken back)"))

    def __init__(self, member_choices: list[tuple[int, str]], pack_choices: list[tuple[str, str]], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.members.choices = member_choices
        self.pack_id.choices = [("", "—"), *pack_choices]

    def validate_confirm_undo(self, field) -> None:
        if self.undo.data and not field.data:
            raise ValidationError(_l("Tick the confirmation to undo the damage."))


class UndoForm(FlaskForm):
    confirm = BooleanField(_l("I confirm: undo the damage (it cannot be taken back)"),
                           validators=[DataRequired(_l("Tick the confirmation to undo the damage."))])


class AppealForm(FlaskForm):
    message = TextAreaField(_l("Why should the decision change?"), validators=[
        DataRequired(_l("Tell the moderators why the decision should change.")),
        Length(max=1000, message=_l("Keep your appeal under 1,000 characters.")),
    ])


class BanAppealForm(AppealForm):
    login = StringField(_l("Username or email"), validators=[DataRequired(_l("Enter your username or email.")), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=128)])


class AppealDecisionForm(FlaskForm):
    decision = ChoiceField(_l("Decision"), choices=[("uphold", _l("Uphold the decision")), ("overturn", _l("Overturn it"))], validate_choice=True)
    note = TextAreaField(_l("Reason"), validators=[DataRequired(_l("Give a reason: the member sees it.")), Length(max=1000, message=_l("Keep your appeal under 1,000 characters."))])
