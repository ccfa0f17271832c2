"""Forms of the organization dashboard."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from sapien.forms import ChoiceField

SCOPE_CHOICES = [("read", _l("Read: progress and results")), ("write", _l("Write: also create campaigns, upload and pay"))]
EVENT_CHOICES = [
    ("item.verified", _l("An item is verified")),
    ("campaign.done", _l("A campaign is done")),
    ("budget.low", _l("A campaign's budget runs low")),
]


class MemberForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(_l("Give the member's username.")), Length(1, 80, _l("Usernames are at most 80 characters long."))])
    role = ChoiceField(_l("Role"), choices=[("member", _l("Member")), ("owner", _l("Owner"))], default="member")


class KeyForm(FlaskForm):
    name = StringField(_l("Key name"), validators=[DataRequired(_l("Name the key.")), Length(1, 120, _l("Key names are 1 to 120 characters long."))])
    scope = ChoiceField(_l("Scope"), choices=SCOPE_CHOICES, default="read")


class WebhookForm(FlaskForm):
    url = StringField(_l("URL"), validators=[DataRequired(_l("Give the address to send events to.")), Length(1, 2000, _l("The URL is too long."))])
    events = SelectMultipleField(
        _l("Events"), choices=EVENT_CHOICES, default=["item.verified"], widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
        validators=[DataRequired(_l("Choose at least one event."))],
    )
