"""The economy's forms: they hand the services plain values (token amounts in base units)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from sapien.economy.parameters import PARAMETERS
from sapien.forms import ChoiceField
from sapien.i18n import parse_tokens

SEVERITY_LABELS = {
    "warning": _l("Warning (nothing slashed)"),
    "moderate": _l("Moderate"),
    "severe": _l("Severe"),
}


class StakeForm(FlaskForm):
    amount = StringField(_l("Tokens to stake"), validators=[DataRequired(message=_l("Enter an amount of tokens.")), Length(max=60)])
    lock_months = ChoiceField(_l("Lock period"), choices=[])

    def amount_units(self) -> int:
        """The amount in base units (raises TokenAmountError on a negative or too fine amount)."""
        return parse_tokens(self.amount.data)


class ParameterForm(FlaskForm):
    name = ChoiceField(_l("Setting"), choices=[(name, name) for name in PARAMETERS])
    value = TextAreaField(_l("New value"), validators=[DataRequired(message=_l("Enter the new value.")), Length(max=5000)])
    reason = TextAreaField(_l("Why (kept in the history)"), validators=[Optional(), Length(max=500)])


class PaymentForm(FlaskForm):
    campaign_id = ChoiceField(_l("Campaign"), choices=[], coerce=int)
    amount = StringField(_l("Amount (tokens)"), validators=[DataRequired(message=_l("Enter an amount of tokens.")), Length(max=60)])
    external_ref = StringField(_l("Reference (invoice number)"), validators=[Optional(), Length(max=200)])


class SlashForm(FlaskForm):
    username = StringField(_l("Member's username"), validators=[DataRequired(message=_l("Enter the member's username.")), Length(max=64)])
    severity = ChoiceField(_l("Severity"), choices=list(SEVERITY_LABELS.items()))
    reason = TextAreaField(_l("Reason (the member reads it; kept in the audit log)"), validators=[Optional(), Length(max=2000)])
