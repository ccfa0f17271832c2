"""The member's wallet page: link a wallet by Sign-In with Ethereum, unlink it, choose the payout chain,
withdraw tokens and follow the withdrawals; and the moderators' chain console."""

from __future__ import annotations

from flask import Blueprint, jsonify, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from sapien.accounts import service as accounts
from sapien.chain import console, payouts, wallets
from sapien.chain.forms import PayoutChainForm, WalletLinkForm, WalletMessageForm, WithdrawForm
from sapien.chain.payout_chains import chain_named, enabled_chains
from sapien.chain.reconciliation import reconcile_payouts
from sapien.chain.registry import chain_info
from sapien.chain.siwe import SiweError
from sapien.database import utcnow
from sapien.forms import EmptyForm
from sapien.i18n import CURRENCY_NAMES, format_money
from sapien.ledger import service as ledger
from sapien.web import (
    flash_message,
    redirect_to,
    render_page_or_fragment,
    render_poll,
    role_required,
    show_domain_error,
)

bp = Blueprint("chain", __name__)


def this_site() -> wallets.Site:
    # The host the browser used (behind trusted proxies, the one they forwarded): a message signed for
    # another host is refused.
    return wallets.Site(domain=request.host, uri=url_for("chain.wallet", _external=True))


def _render(status: int = 200, *, message_form=None, link_form=None, message_text: str | None = None, withdraw_form=None):
    wallet = wallets.wallet_for(current_user.id)
    payout_form = PayoutChainForm(formdata=None, chain_id=wallet.payout_chain_id if wallet else None)
    return render_page_or_fragment(
        "chain/wallet.html",
        "chain/fragments/wallet.html",
        status=status,
        wallet=wallet,
        payout_chain=wallets.payout_chain_of(current_user.id),
        chains=enabled_chains(),
        chain_named=chain_named,
        message_form=message_form or WalletMessageForm(formdata=None),
        link_form=link_form or WalletLinkForm(formdata=None),
        message_text=message_text,
        payout_form=payout_form,
        unlink_form=EmptyForm(formdata=None),
        withdraw_form=withdraw_form or WithdrawForm(formdata=None),
        balances=ledger.balances(current_user.id),
        withdrawals=payouts.withdrawal_history(current_user.id),
    )


@bp.get("/wallet")
@login_required
def wallet():
    return _render()


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


@bp.post("/wallet/message")
@login_required
def message():
    """Issue a sign-in message for the address and chain sent: as JSON for the page's script (which then
    asks the browser's wallet to sign it), or as the page showing it, to sign with any wallet."""
    form = WalletMessageForm()
    error = None
    if form.validate_on_submit():
        try:
            issued = wallets.start_link(current_user.id, form.address.data, form.chain_id.data, this_site(), utcnow())
        except SiweError as problem:
            show_domain_error(form, problem)
            error = str(problem.message)
        else:
            if _wants_json():
                return jsonify(message=issued.text())
            link_form = WalletLinkForm(formdata=None, message=issued.text())
            return _render(message_form=form, link_form=link_form, message_text=issued.text())
    if _wants_json():
        error = error or " ".join(str(e) for errors in form.errors.values() for e in errors)
        return jsonify(error=error), 422
    return _render(422, message_form=form)


@bp.post("/wallet/link")
@login_required
def link():
    form = WalletLinkForm()
    if form.validate_on_submit():
        try:
            result = wallets.link_wallet(current_user.id, form.message.data, form.signature.data, this_site(), utcnow())
        except SiweError as error:
            show_domain_error(form, error)
        else:
            if result.unchanged:
                flash_message(_("That wallet is already the one linked to your account."), "info")
            elif result.relinked:
                # The other sessions were signed out with the change; this browser signs in again.
                login_user(accounts.get_user(current_user.id))
                flash_message(_("Your wallet %(address)s is linked and your other sessions are signed out.",
                                address=result.address))
            else:
                flash_message(_("Your wallet %(address)s is linked.", address=result.address))
            return redirect_to(url_for("chain.wallet"))
    # What the member sent stays in the form, so a corrected signature can be pasted again.
    message_text = wallets.normalise_message(form.message.data or "") or None
    return _render(422, link_form=form, message_text=message_text)


@bp.post("/wallet/unlink")
@login_required
def unlink():
    form = EmptyForm()
    if form.validate_on_submit():
        try:
            address = wallets.unlink_wallet(current_user.id, utcnow())
        except SiweError as error:
            flash_message(str(error.message), "error")
        else:
            login_user(accounts.get_user(current_user.id))
            flash_message(_("Your wallet %(address)s is unlinked and your other sessions are signed out.", address=address))
    return redirect_to(url_for("chain.wallet"))


@bp.post("/wallet/payout-chain")
@login_required
def payout_chain():
    form = PayoutChainForm()
    if form.validate_on_submit():
        try:
            chain = wallets.set_payout_chain(current_user.id, form.chain_id.data)
        except SiweError as error:
            flash_message(str(error.message), "error")
        else:
            flash_message(_("Payouts will go to your wallet on %(chain)s.", chain=chain.name))
    else:
        flash_message(_("Choose a chain from the list."), "error")
    return redirect_to(url_for("chain.wallet"))


# --- withdrawals ----------------------------------------------------------------------------------

@bp.post("/wallet/withdraw")
@login_required
def withdraw():
    form = WithdrawForm()
    if form.validate_on_submit():
        amount = form.base_units()
        try:
            payouts.request_withdrawal(current_user.id, form.currency.data, amount, form.key.data, utcnow())
        except payouts.PayoutError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("%(amount)s %(token)s are on their way to your wallet.", amount=format_money(amount, form.currency.data),
                            token=CURRENCY_NAMES[form.currency.data]))
            return redirect_to(url_for("chain.wallet"))
    return _render(422, withdraw_form=form)


@bp.get("/wallet/withdrawals")
@login_required
def withdrawals():
    """The member's withdrawals; the list polls itself while one is still on its way."""
    return render_poll("chain/withdrawals.html", "chain/fragments/withdrawals.html", withdrawals=payouts.withdrawal_history(current_user.id))


# --- the moderators' chain console ----------------------------------------------------------------

@bp.get("/manage/chain")
@role_required("moderator")
def chain_console():
    report = reconcile_payouts(utcnow())
    return render_page_or_fragment(
        "chain/console.html",
        "chain/fragments/console.html",
        signer=console.signer_view(),
        outbox=console.outbox_view(),
        contracts=console.contracts_by_chain(),
        batches=console.recent_batches(),
        report=report,
        batch_checks={check.batch_id: check for check in report.batches},
        chain_info=chain_info,
    )


@bp.post("/manage/chain/transactions/<int:tx_id>/retry")
@role_required("moderator")
def retry_transaction(tx_id: int):
    form = EmptyForm()
    if form.validate_on_submit():
        try:
            console.retry_transaction(tx_id, utcnow())
        except console.ConsoleError as error:
            flash_message(str(error.message), "error")
        else:
            flash_message(_("Transaction %(id)s is queued again.", id=tx_id))
    return redirect_to(url_for("chain.chain_console"))
