from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from sapien.economy import parameters as store
from sapien.forms import ChoiceField
from sapien.governance.proposals import (
    NOTE_MAX,
    RATIONALE_MAX,
    TASK_TYPE_MAX,
    TITLE_MAX,
    GovernanceError,
    ProposalDraft,
    parse_value,
)

KIND_CHOICES = [("parameter", _l("Change an economy setting")), ("task_type", _l("Add a new task type"))]


class ProposalForm(FlaskForm):
    kind = ChoiceField(_l("What do you propose?"), choices=KIND_CHOICES, default="parameter")
    title = StringField(_l("Title"), validators=[DataRequired(_l("Give the proposal a title.")),
                                                 Length(max=TITLE_MAX, message=_l("Keep the title under 120 characters."))])
    rationale = TextAreaField(_l("Why?"), validators=[Optional(), Length(max=RATIONALE_MAX, message=_l("Keep the rationale under 4000 characters."))])
    parameter_name = ChoiceField(_l("Setting"), validators=[Optional()])
    new_value = StringField(_l("New value"), validators=[Optional(), Length(max=4000)])
    task_type_name = StringField(_l("Task type"), validators=[Optional(), Length(max=TASK_TYPE_MAX, message=_l("Keep the task type's name under 64 characters."))])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.parameter_name.choices = [("", _l("Choose a setting"))] + [(name, name) for name in sorted(store.PARAMETERS)]

    def draft(self) -> ProposalDraft:
        """The form as the service's draft; the value typed by the setting's kind (raises GovernanceError)."""
        if self.kind.data == "parameter":
            if not self.parameter_name.data:
                raise GovernanceError(_l("Choose a setting from the list."), field="parameter_name")
            if not (self.new_value.data or "").strip():
                raise GovernanceError(_l("Enter the value you propose."), field="new_value")
            value = parse_value(self.parameter_name.data, self.new_value.data)
            return ProposalDraft("parameter", self.title.data, self.rationale.data or "", parameter_name=self.parameter_name.data, new_value=value)
        return ProposalDraft("task_type", self.title.data, self.rationale.data or "", task_type_name=self.task_type_name.data)


class VoteForm(FlaskForm):
    choice = ChoiceField(_l("Your vote"), choices=[("for", _l("For")), ("against", _l("Against")), ("abstain", _l("Abstain"))])


class ReasonForm(FlaskForm):
    reason = StringField(_l("Reason (shown on the proposal)"), validators=[DataRequired(_l("Give a reason: it is shown on the proposal.")),
                                                                         Length(max=NOTE_MAX, message=_l("Keep the reason under 500 characters."))])


class DoneForm(FlaskForm):
    note = StringField(_l("What was done"), validators=[DataRequired(_l("Say what was done: it is shown on the proposal.")),
                                                       Length(max=NOTE_MAX, message=_l("Keep the note under 500 characters."))])
