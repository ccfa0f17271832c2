from __future__ import annotations

from babel import Locale
from flask import current_app
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp

from sapien import i18n
from sapien.accounts.service import (
    COUNTRY_CODES,
    PASSWORD_MAX,
    PASSWORD_MIN,
    USERNAME_MAX,
    USERNAME_MIN,
)
from sapien.forms import ChoiceField


def country_choices() -> list[tuple[str, str]]:
    """Every ISO 3166-1 country, named in the member's own language."""
    territories = Locale.parse(str(get_locale())).territories
    countries = [(code, name) for code, name in territories.items() if code in COUNTRY_CODES]
    return [("", _l("Prefer not to say")), *sorted(countries, key=lambda item: item[1])]


def timezone_choices() -> list[tuple[str, str]]:
    return i18n.timezone_choices(str(get_locale()))


def language_choices() -> list[tuple[str, str]]:
    return list(current_app.config["LANGUAGES"].items())


class SignUpForm(FlaskForm):
    username = StringField(
        _l("Username"),
        validators=[
            DataRequired(_l("Choose a username.")),
            Length(USERNAME_MIN, USERNAME_MAX, _l("Usernames are 3 to 32 characters long.")),
            Regexp(r"^[\w.-]+$", message=_l("Use letters, digits, dots, dashes and underscores only.")),
        ],
    )
    email = EmailField(
        _l("Email"),
        validators=[
            DataRequired(_l("Enter your email address.")),
            Length(max=254, message=_l("That email address is too long.")),
            Email(_l("Enter a valid email address."), check_deliverability=False),
        ],
    )
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(_l("Choose a password.")),
            Length(PASSWORD_MIN, PASSWORD_MAX, _l("Passwords are 10 to 128 characters long.")),
        ],
    )
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[DataRequired(_l("Repeat your password.")), EqualTo("password", _l("The passwords do not match."))],
    )
    country = ChoiceField(_l("Country"), validators=[Optional()], validate_choice=True)
    timezone = ChoiceField(_l("Time zone"), default="UTC", validate_choice=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = country_choices()
        self.timezone.choices = timezone_choices()


class LoginForm(FlaskForm):
    login = StringField(
        _l("Username or email"),
        validators=[DataRequired(_l("Enter your username or email.")), Length(max=254)],
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=PASSWORD_MAX)])
    remember = BooleanField(_l("Keep me signed in"))


class ProfileForm(FlaskForm):
    display_name = StringField(
        _l("Display name"),
        validators=[DataRequired(_l("Your display name cannot be empty.")), Length(max=64, message=_l("At most 64 characters."))],
    )
    bio = TextAreaField(_l("About you"), validators=[Length(max=500, message=_l("At most 500 characters."))])
    country = ChoiceField(_l("Country"), validators=[Optional()], validate_choice=True)
    timezone = ChoiceField(_l("Time zone"), validate_choice=True)
    locale = ChoiceField(_l("Language"), validate_choice=True)
    hide_from_boards = BooleanField(_l("Hide me from public leaderboards"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = country_choices()
        self.timezone.choices = timezone_choices()
        self.locale.choices = language_choices()


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(_l("Enter your current password."))])
    new_password = PasswordField(
        _l("New password"),
        validators=[
            DataRequired(_l("Choose a new password.")),
            Length(PASSWORD_MIN, PASSWORD_MAX, _l("Passwords are 10 to 128 characters long.")),
        ],
    )
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(_l("Repeat your password.")), EqualTo("new_password", _l("The passwords do not match."))],
    )


class LanguageForm(FlaskForm):
    locale = ChoiceField(_l("Language"), validate_choice=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.locale.choices = language_choices()
