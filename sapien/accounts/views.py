from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, current_app, request, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user

from sapien.accounts import service
from sapien.accounts.forms import LanguageForm, LoginForm, PasswordForm, ProfileForm, SignUpForm
from sapien.arena import ratings as arena_ratings
from sapien.database import utcnow
from sapien.extensions import limiter
from sapien.home.service import profile_page
from sapien.i18n import LANGUAGE_COOKIE, forget_request_i18n
from sapien.web import (
    flash_message,
    form_status,
    long_lived_cookie,
    redirect_to,
    render_page_or_fragment,
    safe_next_url,
    show_domain_error,
)

bp = Blueprint("accounts", __name__)


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SIGNUP_RATE_LIMIT"], methods=["POST"])
def signup():
    if current_user.is_authenticated:
        return redirect_to(url_for("home.dashboard"))
    form = SignUpForm()
    if form.validate_on_submit():
        try:
            user = service.sign_up(
                service.SignUp(
                    username=form.username.data,
                    email=form.email.data,
                    password=form.password.data,
                    country=form.country.data or None,
                    timezone=form.timezone.data,
                    locale=request.cookies.get(LANGUAGE_COOKIE) or None,
                ),
                now=utcnow(),
            )
        except service.AccountError as error:
            show_domain_error(form, error)
        else:
            login_user(user)
            flash_message(_("Welcome to Sapien, %(name)s!", name=user.display_name))
            return redirect_to(url_for("home.dashboard"))
    return render_page_or_fragment(
        "accounts/signup.html", "accounts/fragments/signup_form.html", status=form_status(form), form=form
    )


def _address_and_account_name() -> str:
    return f"{get_remote_address()}|{service.username_key(str(request.form.get('login', '')))[:254]}"


def _failed_sign_in(response) -> bool:
    return response.status_code != 303


# Only failures count, so members signing in behind one address (an office, a carrier's NAT) do not use up
# each other's budget; one abuser there exhausts the limit for the account names they try, and only a
# flood of names reaches the looser per-address cap. The account itself backs off too (`authenticate`).
@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"], key_func=_address_and_account_name,
               deduct_when=_failed_sign_in, scope="login-account")
@limiter.limit(lambda: current_app.config["LOGIN_ADDRESS_RATE_LIMIT"], methods=["POST"], deduct_when=_failed_sign_in,
               scope="login-address")
def login():
    if current_user.is_authenticated:
        return redirect_to(url_for("home.dashboard"))
    form = LoginForm()
    status = form_status(form)
    if form.validate_on_submit():
        try:
            user = service.authenticate(form.login.data, form.password.data, utcnow())
        except service.LoginThrottled as error:
            form.form_errors.append(
                _("Too many failed sign-ins for this account. Try again in %(wait)s.", wait=format_timedelta(timedelta(seconds=error.seconds)))
            )
            status = 429
        except service.AccountError as error:
            show_domain_error(form, error)
        else:
            login_user(user, remember=form.remember.data)
            flash_message(_("Welcome back, %(name)s.", name=user.display_name))
            return redirect_to(safe_next_url(url_for("home.dashboard")))
    return render_page_or_fragment("accounts/login.html", "accounts/fragments/login_form.html", status=status, form=form)


@bp.post("/logout")
@login_required
def logout():
    # Revoking bumps the session version, so copies of this cookie on other devices die too.
    service.revoke_sessions(current_user.id)
    logout_user()
    flash_message(_("You are signed out."))
    return redirect_to(url_for("accounts.login"))


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def settings():
    form = ProfileForm(obj=current_user)
    if form.validate_on_submit():
        try:
            service.update_profile(
                current_user.id,
                display_name=form.display_name.data,
                bio=form.bio.data or "",
                country=form.country.data or None,
                timezone=form.timezone.data,
                locale=form.locale.data,
                hide_from_boards=form.hide_from_boards.data,
                languages=current_app.config["LANGUAGES"],
            )
        except service.AccountError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Your settings are saved."))
            return redirect_to(url_for("accounts.settings"))
    return render_page_or_fragment(
        "accounts/settings.html",
        "accounts/fragments/settings_form.html",
        status=form_status(form),
        form=form,
        password_form=PasswordForm(formdata=None),
    )


@bp.route("/settings/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            service.change_password(current_user.id, form.current_password.data, form.new_password.data)
        except service.AccountError as error:
            show_domain_error(form, error)
        else:
            # The old session version is gone everywhere; sign this browser in again with the new one.
            user = service.get_user(current_user.id)
            login_user(user)
            flash_message(_("Your password is changed and your other sessions are signed out."))
            return redirect_to(url_for("accounts.settings"))
    return render_page_or_fragment(
        "accounts/password.html", "accounts/fragments/password_form.html", status=form_status(form), form=form
    )


@bp.post("/language")
def set_language():
    form = LanguageForm()
    if not form.validate_on_submit():
        flash_message(_("Choose a language from the list."), "error")
        return redirect_to(safe_next_url(url_for("home.index")))
    if current_user.is_authenticated:
        service.set_locale(current_user.id, form.locale.data)
        forget_request_i18n()
    response = redirect_to(safe_next_url(url_for("home.index")))
    long_lived_cookie(response, LANGUAGE_COOKIE, form.locale.data)
    return response


@bp.get("/u/<username>")
def profile(username: str):
    user = service.get_by_username(username)
    if user is None or user.is_banned:
        abort(404)
    viewer_id = current_user.id if current_user.is_authenticated else None
    page = profile_page(user.id, viewer_id, utcnow())
    return render_page_or_fragment(
        "accounts/profile.html",
        "accounts/fragments/profile.html",
        member=user,
        summary=page.summary,
        progression=page.progression,
        guild=page.guild,
        rank=None if user.hide_from_boards else page.rank,
        reputation=page.reputation,
        arena_rating=arena_ratings.profile_standing(user.id, utcnow()),
    )
