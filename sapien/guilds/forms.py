from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from sapien.forms import ChoiceField
from sapien.guilds.founding import GuildDraft
from sapien.guilds.membership import DESCRIPTION_MAX, MESSAGE_MAX, NAME_MAX, NAME_MIN

POLICY_CHOICES = [
    ("open", _l("Open: anyone who meets the requirements joins")),
    ("application", _l("By application: leaders and officers accept")),
    ("invite", _l("Invite-only")),
]


class GuildForm(FlaskForm):
    name = StringField(
        _l("Guild name"),
        validators=[DataRequired(_l("Name your guild.")), Length(NAME_MIN, NAME_MAX, _l("Guild names are 3 to 48 characters long."))],
    )
    description = TextAreaField(
        _l("Description"), validators=[Optional(), Length(max=DESCRIPTION_MAX, message=_l("Descriptions are at most 1000 characters long."))]
    )
    join_policy = ChoiceField(_l("Who can join"), choices=POLICY_CHOICES, default="open")
    min_level = IntegerField(
        _l("Minimum level"),
        default=1,
        validators=[InputRequired(_l("Enter a level.")), NumberRange(1, 100, _l("The minimum level is between 1 and 100."))],
    )
    min_reputation = IntegerField(
        _l("Minimum reputation"),
        default=0,
        validators=[InputRequired(_l("Enter a reputation (0 for none).")), NumberRange(0, 1_000_000, _l("The minimum reputation is between 0 and 1,000,000."))],
    )

    def draft(self) -> GuildDraft:
        """The form as the service's guild draft."""
        return GuildDraft(
            name=self.name.data,
            description=self.description.data or "",
            join_policy=self.join_policy.data,
            min_level=self.min_level.data,
            min_reputation=self.min_reputation.data,
        )


class ApplyForm(FlaskForm):
    message = TextAreaField(
        _l("A few words for the leaders"), validators=[Optional(), Length(max=MESSAGE_MAX, message=_l("Keep your message under 500 characters."))]
    )


class InviteForm(FlaskForm):
    username = StringField(_l("Username to invite"), validators=[DataRequired(_l("Enter a username.")), Length(max=32)])


class KickForm(FlaskForm):
    reason = StringField(
        _l("Reason (kept in the audit log)"),
        validators=[DataRequired(_l("Give a reason: it is kept in the audit log.")), Length(max=MESSAGE_MAX, message=_l("Keep the reason under 500 characters."))],
    )


class RoleForm(FlaskForm):
    role = ChoiceField(_l("Role"), choices=[("officer", _l("Officer")), ("member", _l("Member"))])
