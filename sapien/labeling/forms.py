from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired, MultipleFileField
from wtforms import BooleanField, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from sapien.forms import ChoiceField
from sapien.i18n import TASK_TYPE_NAMES

KIND_CHOICES = [
    ("enterprise", _l("Enterprise: members are paid points, converted to tokens")),
    ("dual", _l("Dual reward: points plus a partner token")),
    ("community", _l("Community: XP now, a share of the dataset's future revenue")),
]
TASK_TYPE_CHOICES = list(TASK_TYPE_NAMES.items())
DIFFICULTY_CHOICES = [
    ("beginner", _l("Beginner (×1)")),
    ("intermediate", _l("Intermediate (×1.5)")),
    ("advanced", _l("Advanced (×2)")),
    ("expert", _l("Expert (×3)")),
]


def _whole(label, low: int, high: int, default: int, message):
    return IntegerField(label, default=default, validators=[InputRequired(_l("Enter a whole number.")), NumberRange(low, high, message)])


class CampaignForm(FlaskForm):
    name = StringField(_l("Campaign name"), validators=[DataRequired(_l("Name the campaign.")), Length(3, 120, _l("Campaign names are 3 to 120 characters long."))])
    kind = ChoiceField(_l("Kind"), choices=KIND_CHOICES, default="enterprise")
    client_name = StringField(_l("Client (optional)"), validators=[Optional(), Length(max=120, message=_l("Client names are at most 120 characters long."))])
    partner_token = StringField(
        _l("Partner token symbol (dual reward only)"),
        validators=[Optional(), Regexp(r"^[A-Za-z0-9]{2,16}$", message=_l("2 to 16 letters or digits, for example ACME."))],
    )
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000, message=_l("Descriptions are at most 5,000 characters long."))])


class PackForm(FlaskForm):
    name = StringField(_l("Pack name"), validators=[DataRequired(_l("Name the pack.")), Length(3, 120, _l("Pack names are 3 to 120 characters long."))])
    slug = StringField(
        _l("Address (slug)"),
        validators=[DataRequired(_l("Choose an address for the pack.")),
                    Regexp(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$", message=_l("Lowercase letters, digits and dashes (1 to 64 characters)."))],
    )
    task_type = ChoiceField(_l("Task type"), choices=TASK_TYPE_CHOICES, default="text_classification")
    multi_label = BooleanField(_l("Members may choose several labels (classification)"))
    label_options = TextAreaField(_l("Labels, one per line (classification and boxes)"), validators=[Optional(), Length(max=4000)])
    instructions = TextAreaField(_l("Instructions"), validators=[Optional(), Length(max=20000, message=_l("Instructions are at most 20,000 characters long."))])
    examples = TextAreaField(_l("Worked examples (JSON list of {\"input\", \"answer\", \"why\"})"), validators=[Optional(), Length(max=40000)])
    difficulty = ChoiceField(_l("Difficulty"), choices=DIFFICULTY_CHOICES, default="beginner")
    reward_points = _whole(_l("Points per accepted label (before difficulty)"), 0, 100_000, 10, _l("Between 0 and 100,000."))
    reward_xp = _whole(_l("XP per accepted label (before difficulty)"), 0, 100_000, 10, _l("Between 0 and 100,000."))
    partner_reward = _whole(_l("Partner tokens per accepted label (dual reward, before difficulty)"), 0, 9, 0, _l("Between 0 and 9 whole tokens."))
    revenue_shares = _whole(_l("Revenue shares per accepted label (community)"), 0, 1_000_000, 0, _l("Between 0 and 1,000,000."))
    labels_per_item = _whole(_l("Labels wanted per item"), 1, 50, 3, _l("Between 1 and 50."))
    max_labels_per_item = _whole(_l("At most labels per item (when members disagree)"), 1, 50, 5, _l("Between 1 and 50."))
    gold_rate_percent = _whole(_l("Gold items mixed in (%)"), 0, 90, 10, _l("Between 0 and 90 percent."))
    review_rate_percent = _whole(_l("Submissions sampled for review (%)"), 0, 100, 10, _l("Between 0 and 100 percent."))
    daily_cap = _whole(_l("Daily cap per member"), 1, 100_000, 200, _l("Between 1 and 100,000."))
    lease_minutes = _whole(_l("Minutes a member holds an item"), 1, 1440, 15, _l("Between 1 and 1,440 minutes."))
    estimated_seconds = _whole(_l("Estimated seconds per item"), 1, 3600, 20, _l("Between 1 and 3,600 seconds."))
    min_level = _whole(_l("Minimum level"), 1, 1000, 1, _l("Between 1 and 1,000."))
    min_reputation = _whole(_l("Minimum reputation"), 0, 1000, 0, _l("Between 0 and 1,000."))
    min_stake = _whole(_l("Minimum stake (whole tokens)"), 0, 1_000_000_000, 0, _l("Between 0 and 1,000,000,000."))
    exam_required = BooleanField(_l("Members must pass a qualification exam first"))
    exam_size = _whole(_l("Questions per exam"), 1, 50, 5, _l("Between 1 and 50."))
    exam_pass_percent = _whole(_l("Score needed to pass (%)"), 1, 100, 80, _l("Between 1 and 100 percent."))

    def settings(self) -> dict:
        """The form as the service's pack settings."""
        names = [name for name in self._fields if name not in ("csrf_token",)]
        values = {name: self._fields[name].data for name in names}
        values["label_options"] = values["label_options"] or ""
        values["examples"] = values["examples"] or ""
        return values


class UploadForm(FlaskForm):
    items = FileField(_l("Items file (.jsonl or .csv)"), validators=[FileRequired(_l("Choose the items file."))])
    media = MultipleFileField(_l("Media files (images or audio the items name)"))


class PackStatusForm(FlaskForm):
    status = ChoiceField(_l("Status"), choices=[("open", _l("Open")), ("paused", _l("Paused")), ("closed", _l("Closed"))])
