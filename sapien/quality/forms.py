from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from sapien.forms import ChoiceField

OUTCOME_LABELS = {"accepted": _l("Accept"), "fixed": _l("Fix and accept"), "rejected": _l("Reject")}
METHOD_LABELS = {
    "calibrated": _l("Calibrated (the model that scores best on gold)"),
    "dawid_skene": _l("Dawid-Skene (gold-initialised)"),
    "wawa": _l("Wawa (agreement-weighted vote)"),
    "majority_vote": _l("Majority vote weighted by skill"),
    "crowdkit_dawid_skene": _l("crowd-kit's Dawid-Skene"),
    "medoid": _l("Medoid (the text closest to all the others)"),
    "box_medoid": _l("Box medoid (the drawing closest to all the others)"),
}


class ReviewForm(FlaskForm):
    """The outcome comes from the button pressed; the fix comes from the answer widget's own fields."""

    outcome = ChoiceField(_l("Decision"), choices=list(OUTCOME_LABELS.items()))
    reason = TextAreaField(_l("Reason (required to reject; the member sees it)"), validators=[Optional(), Length(max=1000)])


class AppealForm(FlaskForm):
    message = TextAreaField(
        _l("Why was your answer right?"),
        validators=[DataRequired(message=_l("Tell the moderators why you think your answer was right.")), Length(max=2000)],
    )


class AppealDecisionForm(FlaskForm):
    decision = ChoiceField(_l("Decision"), choices=[("overturn", _l("Overturn: accept and pay")), ("uphold", _l("Uphold the rejection"))])
    note = TextAreaField(_l("Note to the member (required to uphold)"), validators=[Optional(), Length(max=2000)])


class AggregateForm(FlaskForm):
    method = ChoiceField(_l("Method"), choices=list(METHOD_LABELS.items()))


class OverrideForm(FlaskForm):
    """A moderator's override of one item's label; the service checks the answer and requires the reason."""

    answer = StringField(_l("The answer that stands"), validators=[Optional(), Length(max=20000)])
    reason = TextAreaField(_l("Reason (required; kept with the label and in the audit log)"), validators=[Optional(), Length(max=1000)])
