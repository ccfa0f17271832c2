from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from sapien.chain.payout_chains import enabled_chains
from sapien.forms import ChoiceField


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
