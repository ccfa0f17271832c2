from __future__ import annotations

import uuid

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField, ValidationError
from wtforms.validators import DataRequired, Length

from sapien.chain.payout_chains import enabled_chains
from sapien.forms import ChoiceField
from sapien.i18n import TOKEN_UNIT, TokenAmountError, parse_tokens


def chain_choices() -> list[tuple[int, str]]:
    return [(chain.chain_id, chain.name) for chain in enabled_chains()]


def _chain_id(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class WalletMessageForm(FlaskForm):
    """Ask for a sign-in message: the wallet's address and the chain it is on."""

    address = StringField(_l("Wallet address"), validators=[DataRequired(_l("Enter your wallet's address.")), Length(max=64)])
    chain_id = ChoiceField(_l("Chain"), coerce=_chain_id)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.chain_id.choices = chain_choices()


class WalletLinkForm(FlaskForm):
    """A signed sign-in message: the message as it was signed and the wallet's signature of it."""

    message = TextAreaField(_l("Message to sign"), validators=[DataRequired(_l("The message is missing. Ask for a new one.")),
                                                               Length(max=4000)])
    signature = StringField(_l("Signature"), validators=[DataRequired(_l("Paste the signature your wallet made.")),
                                                         Length(max=200)])


class PayoutChainForm(FlaskForm):
    chain_id = ChoiceField(_l("Payout chain"), coerce=_chain_id)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.chain_id.choices = chain_choices()


WITHDRAW_CURRENCIES = (("token", _l("Tokens")), ("partner", _l("Partner tokens")))
MAX_TOKENS = 10**12  # far above any balance (the ledger's BIGINT holds 9.2 trillion tokens)


class WithdrawForm(FlaskForm):
    """A withdrawal: which token, how much (in tokens, up to TOKEN_DECIMALS decimals), and the request's key (a
    fresh one on every page, so the same form sent twice withdraws once)."""

    currency = ChoiceField(_l("Token"), choices=WITHDRAW_CURRENCIES)
    amount = StringField(_l("Amount"), validators=[DataRequired(_l("Enter how much to withdraw.")), Length(max=40)])
    key = HiddenField(validators=[DataRequired(_l("This form is out of date. Reload the page and try again.")), Length(max=100)])

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)

    def validate_amount(self, field) -> None:
        try:
            units = parse_tokens(field.data)
        except TokenAmountError as error:
            raise ValidationError(error.message) from None
        if units <= 0:
            raise ValidationError(_l("Enter an amount above zero."))
        if units > MAX_TOKENS * TOKEN_UNIT:
            raise ValidationError(_l("That is more than your balance. Withdraw at most what you have."))

    def base_units(self) -> int:
        """The amount in the ledger's base units (TOKEN_UNIT to a token), in the reader's number format."""
        return parse_tokens(self.amount.data)
