"""Form fields shared by every area, with messages in our own catalogues."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, ValidationError


class ChoiceField(SelectField):
    """A select whose "not one of the options" error is ours, translated into every site language."""

    def pre_validate(self, form) -> None:
        if not self.validate_choice or self.data in (None, ""):
            return
        if not any(self.data == value for value, _label, _selected, _render in self.iter_choices()):
            raise ValidationError(_l("Choose an option from the list."))
