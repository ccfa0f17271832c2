"""Form fields shared by every area, with messages in our own catalogues."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, ValidationError


class ChoiceField(SelectField):
    """A select whose "not one of the options" error is ours, translated into every site language. An
    empty value passes only where it is allowed: an `Optional()` field or one with a blank option."""

    def pre_validate(self, form) -> None:
        if not self.validate_choice:
            return
        choices = [value for value, _label, _selected, _render in self.iter_choices()]
        if self.data in (None, "") and (self.flags.optional or "" in choices):
            return
        if not any(self.data == value for value in choices):
            raise ValidationError(_l("Choose an option from the list."))


class EmptyForm(FlaskForm):
    """A POST with nothing but its CSRF token (claim, buy, mark read, claim a review)."""
