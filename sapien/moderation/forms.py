from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length, Optional

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
