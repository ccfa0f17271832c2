from __future__ import annotations

from flask import Blueprint, abort, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from sapien.accounts import service as accounts
from sapien.database import utcnow
from sapien.economy import conversion, overview, parameters, revenue, staking
from sapien.economy.errors import EconomyError, EconomyNotFound
from sapien.economy.forms import SEVERITY_LABELS, ParameterForm, PaymentForm, SlashForm, StakeForm
from sapien.errors import DomainError
from sapien.forms import EmptyForm
from sapien.i18n import format_tokens, parse_tokens
from sapien.ledger import service as ledger
from sapien.web import (
    flash_message,
    form_status,
    redirect_to,
    render_page_or_fragment,
    role_required,
    show_domain_error,
)

bp = Blueprint("economy", __name__, url_prefix="/economy")


# --- the member's wallet --------------------------------------------------------------------------

def _stake_form(form: StakeForm | None = None) -> StakeForm:
    form = form or StakeForm(formdata=None)
    form.lock_months.choices = [
        (str(tier.months), _("%(months)s months (×%(multiplier)s from %(amount)s tokens)", months=tier.months, multiplier=tier.multiplier,
                             amount=format_tokens(tier.min_amount)))
        for tier in staking.tiers()
    ]
    return form


def _render_wallet(stake_form: StakeForm | None = None, status: int = 200):
    now = utcnow()
    return render_page_or_fragment(
        "economy/wallet.html", "economy/fragments/wallet.html", status=status,
        balances=ledger.balances(current_user.id), summary=staking.stake_summary(current_user.id), tiers=staking.tiers(),
        outlook=conversion.outlook(current_user.id, now), history=conversion.history(current_user.id),
        statements=revenue.statements(current_user.id), stake_form=_stake_form(stake_form), action_form=EmptyForm(formdata=None),
        severity_labels=SEVERITY_LABELS, now=now,
    )


@bp.get("/wallet")
@login_required
def wallet():
    return _render_wallet()


@bp.post("/convert")
@login_required
def convert():
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        made = conversion.convert_member(current_user.id, now=utcnow())
    except EconomyError as error:
        flash_message(error.message, "error")
    else:
        flash_message(_("Converted %(points)s points into %(tokens)s tokens (%(staked)s staked).", points=f"{made.points:,}",
                        tokens=format_tokens(made.tokens), staked=format_tokens(made.staked)))
    return redirect_to(url_for("economy.wallet"))


@bp.post("/stake")
@login_required
def stake():
    form = _stake_form(StakeForm())
    if form.validate_on_submit():
        try:
            position = staking.stake(current_user.id, form.amount_units(), int(form.lock_months.data), now=utcnow())
        except DomainError as error:
            if error.field is None:
                error.field = "amount"
            show_domain_error(form, error)
        else:
            flash_message(_("Staked %(amount)s tokens for %(months)s months.", amount=format_tokens(position.amount),
                            months=position.lock_months))
            return redirect_to(url_for("economy.wallet"))
    return _render_wallet(form, status=form_status(form))


def _position_action(action, done: str):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        action()
    except EconomyNotFound:
        abort(404)
    except EconomyError as error:
        flash_message(error.message, "error")
    else:
        flash_message(done)
    return redirect_to(url_for("economy.wallet"))


@bp.post("/stakes/<int:position_id>/unstake")
@login_required
def unstake(position_id: int):
    return _position_action(lambda: staking.request_unstake(current_user.id, position_id, now=utcnow()),
                            _("Unstaking: the cooldown has started. Collect your tokens when it ends."))


@bp.post("/stakes/<int:position_id>/collect")
@login_required
def collect(position_id: int):
    return _position_action(lambda: staking.collect_unstaked(current_user.id, position_id, now=utcnow()),
                            _("Your unstaked tokens are back in your balance."))


# --- the admins' economy page ---------------------------------------------------------------------

def _payment_form(form: PaymentForm | None = None) -> PaymentForm:
    form = form or PaymentForm(formdata=None)
    form.campaign_id.choices = overview.campaign_choices()
    return form


def _render_admin(parameter_form: ParameterForm | None = None, payment_form: PaymentForm | None = None, status: int = 200):
    history = parameters.parameter_history(limit=200)
    actors = overview.usernames({change.actor_id for change in history if change.actor_id})
    return render_page_or_fragment(
        "economy/admin.html", "economy/fragments/admin.html", status=status,
        specs=parameters.PARAMETERS, values=parameters.all_parameters(), display=parameters.display_value, history=history, actors=actors,
        totals=overview.totals(), payments=revenue.payments(), epochs=conversion.epochs(),
        parameter_form=parameter_form or ParameterForm(formdata=None), payment_form=_payment_form(payment_form),
    )


@bp.get("/admin")
@role_required("admin")
def admin():
    return _render_admin()


@bp.post("/admin/parameters")
@role_required("admin")
def change_parameter():
    form = ParameterForm()
    if form.validate_on_submit():
        try:
            value = parameters.parse_value(form.name.data, form.value.data)
            parameters.set_parameter(form.name.data, value, actor_id=current_user.id, reason=form.reason.data or "", now=utcnow())
        except DomainError as error:
            if error.field is None:
                error.field = "value"
            show_domain_error(form, error)
        else:
            flash_message(_("%(name)s changed.", name=form.name.data))
            return redirect_to(url_for("economy.admin"))
    return _render_admin(parameter_form=form, status=form_status(form))


@bp.post("/admin/payments")
@role_required("admin")
def record_payment():
    form = _payment_form(PaymentForm())
    if form.validate_on_submit():
        try:
            recorded = revenue.record_campaign_payment(form.campaign_id.data, parse_tokens(form.amount.data),
                                                       external_ref=form.external_ref.data or "", actor_id=current_user.id, now=utcnow())
        except DomainError as error:
            if error.field not in ("amount", "external_ref", "campaign_id"):
                error.field = "amount"
            show_domain_error(form, error)
        else:
            if recorded.created:
                flash_message(_("Payment recorded and shared among %(count)s members.", count=recorded.payment.recipients))
            else:
                flash_message(_("That payment was recorded before: it was not shared again."), "info")
            return redirect_to(url_for("economy.admin"))
    return _render_admin(payment_form=form, status=form_status(form))


# --- the moderators' page: epoch reports and slashes ----------------------------------------------

def _render_moderation(slash_form: SlashForm | None = None, status: int = 200):
    slashes = overview.recent_slashes()
    return render_page_or_fragment(
        "economy/moderation.html", "economy/fragments/moderation.html", status=status,
        epochs=conversion.epochs(), slashes=slashes, slash_form=slash_form or SlashForm(formdata=None), severity_labels=SEVERITY_LABELS,
    )


@bp.get("/moderation")
@role_required("moderator")
def moderation():
    return _render_moderation()


@bp.post("/moderation/slash")
@role_required("moderator")
def slash():
    form = SlashForm()
    if form.validate_on_submit():
        member = accounts.get_by_username(form.username.data.strip())
        if member is None:
            form.username.errors = [_("There is no member with that username.")]
        else:
            try:
                made = staking.slash(member.id, form.severity.data, reason=form.reason.data or "", actor_id=current_user.id, now=utcnow())
            except EconomyError as error:
                show_domain_error(form, error)
            else:
                flash_message(_("Slash recorded: %(amount)s tokens taken.", amount=format_tokens(made.amount)))
                return redirect_to(url_for("economy.moderation"))
    return _render_moderation(form, status=form_status(form))
