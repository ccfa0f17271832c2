"""Linking a member's wallet by Sign-In with Ethereum, and their payout chain.

The rules, in the order they are checked (each with its own message for the member):
- the server issues the message: a nonce of its own (single use, `NONCE_LIFETIME`, tied to the member,
  the address and the chain they asked for), this site's domain and URI, an expiration time;
- a signed message must be well-formed EIP-4361, for this domain and URI, on an enabled chain, carry a
  nonce this member was issued and has not used, be inside its validity window, and be signed by the
  wallet it names (eth-account recovers the signer);
- one wallet per member and one member per wallet: unique keys decide a race, under a savepoint, so the
  loser gets a clear message and nothing else changes;
- a member who already has a wallet and links another, or unlinks it, changes a credential:
  `events.wallet_changed` is sent in the transaction and accounts signs out their other sessions.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from eth_utils import is_address, to_checksum_address
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from sapien import events
from sapien.chain import siwe
from sapien.chain.payout_chains import PayoutChain, chain_named, enabled_chain_ids, enabled_chains
from sapien.chain.siwe import SiweError, SiweMessage
from sapien.chain.wallet_models import SiweNonce, Wallet
from sapien.database import as_utc, unit_of_work
from sapien.extensions import db

NONCE_LIFETIME = timedelta(minutes=10)
NONCE_LENGTH = 20
NONCE_ALPHABET = string.ascii_letters + string.digits
# Clocks differ a little between a wallet and the server: an Issued At this far ahead still counts.
CLOCK_SKEW = timedelta(minutes=1)
# The message's statement is plain ASCII by the EIP's grammar, so it stays in English; the page explains
# it in the member's language beside the message.
STATEMENT = "Link this wallet to your Sapien account."

ALREADY_LINKED = _l("This wallet is already linked to another member. Each wallet can belong to one member only.")


class WalletError(SiweError):
    """A wallet rule was broken (bad address, unknown chain, no wallet to change)."""


@dataclass(frozen=True)
class Site:
    """What the request says this site is: the domain and URI a message must be bound to."""

    domain: str
    uri: str


@dataclass(frozen=True)
class LinkResult:
    address: str
    previous_address: str | None
    unchanged: bool = False

    @property
    def relinked(self) -> bool:
        return self.previous_address is not None and not self.unchanged


def checksum_address(raw: str) -> str:
    """A wallet address as the member typed it (any case, with or without 0x), checksummed."""
    value = raw.strip()
    if value and not value.lower().startswith("0x"):
        value = "0x" + value
    if not is_address(value):
        raise WalletError(_l("That is not a wallet address: it should be 0x followed by 40 hexadecimal digits."), "address")
    return to_checksum_address(value)


def check_chain(chain_id: int) -> PayoutChain:
    chain = chain_named(chain_id)
    if chain is None or chain_id not in enabled_chain_ids():
        names = ", ".join(chain.name for chain in enabled_chains())
        raise WalletError(_l("Chain %(chain_id)s is not one Sapien uses. Switch your wallet to one of: %(names)s.",
                             chain_id=chain_id, names=names), "chain_id")
    return chain


def start_link(user_id: int, address: str, chain_id: int, site: Site, now: datetime) -> SiweMessage:
    """Issue a nonce and the message for the member's wallet to sign."""
    address = checksum_address(address)
    check_chain(chain_id)
    nonce = "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LENGTH))
    with unit_of_work() as session:
        # A member's spent and lapsed nonces are kept no longer than they could matter.
        session.execute(delete(SiweNonce).where(SiweNonce.user_id == user_id, SiweNonce.expires_at < now - NONCE_LIFETIME))
        session.add(SiweNonce(nonce=nonce, user_id=user_id, address=address, chain_id=chain_id, issued_at=now,
                              expires_at=now + NONCE_LIFETIME))
    return SiweMessage(
        domain=site.domain, address=address, statement=STATEMENT, uri=site.uri, chain_id=chain_id, nonce=nonce,
        issued_at=siwe.format_timestamp(now), expiration_time=siwe.format_timestamp(now + NONCE_LIFETIME),
    )


def normalise_message(text: str) -> str:
    """Browsers send a form's line breaks as CRLF; an EIP-4361 message has LF only, and no edge spaces."""
    return text.replace("\r\n", "\n").strip()


def link_wallet(user_id: int, text: str, signature: str, site: Site, now: datetime) -> LinkResult:
    """Check a signed sign-in message and link its wallet to the member (see the module's rules)."""
    text = normalise_message(text)
    message = siwe.parse_message(text)
    if message.domain != site.domain:
        raise SiweError(_l("This message was made for another site (%(domain)s). Sign the message this page shows.",
                           domain=message.domain))
    if message.uri != site.uri:
        raise SiweError(_l("This message was made for another page (%(uri)s). Sign the message this page shows.",
                           uri=message.uri))
    check_chain(message.chain_id)
    with unit_of_work() as session:
        # Locked: the same message sent twice at once is checked once, and the second sees it used.
        issued = session.get(SiweNonce, message.nonce, with_for_update=True)
        if issued is None or issued.user_id != user_id:
            raise SiweError(_l("This message's nonce was not issued to you. Ask for a new message and sign it."))
        if issued.used_at is not None:
            raise SiweError(_l("This signed message was already used. Ask for a new message and sign it."))
        if as_utc(issued.expires_at) <= now:
            raise SiweError(_l("This sign-in message has expired. Ask for a new one and sign it."))
        if message.chain_id != issued.chain_id:
            raise SiweError(_l("This message is for another chain than the one you asked for. Ask for a new message and sign it."))
        if message.address != issued.address:
            raise SiweError(_l("This message names another wallet than the one you asked to link. Ask for a new message and sign it."))
        issued_at = message.issued_at_time
        if issued_at > now + CLOCK_SKEW or issued_at < as_utc(issued.issued_at) - CLOCK_SKEW:
            raise SiweError(_l("This message's issue time is not the one this page gave it. Ask for a new message and sign it."))
        siwe.verify(text, signature, now=now, domain=site.domain, nonce=issued.nonce)
        issued.used_at = now
        return _link(session, user_id, message.address, message.chain_id, now)


def _link(session, user_id: int, address: str, chain_id: int, now: datetime) -> LinkResult:
    current = session.scalar(select(Wallet).where(Wallet.user_id == user_id).with_for_update())
    if current is not None and current.address == address:
        return LinkResult(address=address, previous_address=address, unchanged=True)
    owner = session.scalar(select(Wallet.user_id).where(Wallet.address == address))
    if owner is not None:
        raise SiweError(ALREADY_LINKED)
    previous = current.address if current is not None else None
    try:
        # Two members linking one wallet at once both pass the check above: the unique key decides, and the
        # savepoint keeps the caller's transaction usable for the error page.
        with session.begin_nested():
            if current is None:
                session.add(Wallet(user_id=user_id, address=address, payout_chain_id=chain_id, linked_at=now))
            else:
                current.address = address
                current.linked_at = now
            session.flush()
    except IntegrityError as error:
        constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None) or str(error.orig)
        if "address" in constraint:
            raise SiweError(ALREADY_LINKED) from error
        raise SiweError(_l("Your wallet was changed from another page at the same time. Reload and try again.")) from error
    if previous is not None:
        events.wallet_changed.send(None, user_id=user_id, address=address, previous_address=previous, now=now)
    return LinkResult(address=address, previous_address=previous)


def unlink_wallet(user_id: int, now: datetime) -> str:
    """Remove the member's wallet (their other sessions are signed out); returns the address it had."""
    with unit_of_work() as session:
        wallet = session.scalar(select(Wallet).where(Wallet.user_id == user_id).with_for_update())
        if wallet is None:
            raise WalletError(_l("You have no linked wallet."))
        address = wallet.address
        session.delete(wallet)
        session.flush()
        events.wallet_changed.send(None, user_id=user_id, address=None, previous_address=address, now=now)
    return address


def set_payout_chain(user_id: int, chain_id: int) -> PayoutChain:
    chain = check_chain(chain_id)
    with unit_of_work() as session:
        wallet = session.scalar(select(Wallet).where(Wallet.user_id == user_id).with_for_update())
        if wallet is None:
            raise WalletError(_l("Link a wallet before you choose where payouts go."))
        wallet.payout_chain_id = chain.chain_id
    return chain


def wallet_for(user_id: int) -> Wallet | None:
    return db.session.scalar(select(Wallet).where(Wallet.user_id == user_id))


def wallet_of(user_id: int) -> str | None:
    """The member's linked wallet address (checksummed), or None: the answer to `events.wallet_of`."""
    return db.session.scalar(select(Wallet.address).where(Wallet.user_id == user_id))


def payout_chain_of(user_id: int) -> PayoutChain | None:
    """The enabled chain the member chose for payouts, or None (no wallet, or that chain is off now)."""
    chain_id = db.session.scalar(select(Wallet.payout_chain_id).where(Wallet.user_id == user_id))
    if chain_id is None or chain_id not in enabled_chain_ids():
        return None
    return chain_named(chain_id)
