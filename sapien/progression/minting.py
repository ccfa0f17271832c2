"""Badge minting: a `MintRequest` goes through the chain's outbox to the member's linked wallet.

    pending ──(wallet linked)──▶ submitted ──receipt──▶ minted | failed        (cancelled: revoked first)

A request whose member has linked no wallet stays pending and is not pending *work*: the reconciler
lists it again once `events.wallet_of` answers an address (mint_queue.py). The outbox row's key is
`badge-mint:<request id>` and the token id comes from (member, badge), so neither a job run twice nor a
worker killed at any point can mint a second token: a retry re-sends the same signed bytes, and a fresh
mint of the same id reverts on chain.
"""

from __future__ import annotations

from datetime import datetime

import requests
from sqlalchemy import select, update

from sapien import events
from sapien.chain.client import current_chain_id, web3_client
from sapien.chain.contracts import badge_token_id, call_data, contract_at
from sapien.chain.deploy import contract_address
from sapien.chain.models import ChainTransaction
from sapien.chain.outbox import WAITING_FOR_CHAIN, ChainUnavailable, advance, queue_transaction
from sapien.chain.pending import enqueue_send
from sapien.chain.pipeline import advance_many
from sapien.database import after_commit, unit_of_work
from sapien.extensions import db
from sapien.progression.mint_queue import mints_to_do
from sapien.progression.models import BadgeAward, MintRequest


class ContractsNotDeployed(RuntimeError):
    """No SapienBadge recorded for the configured chain: run `flask chain deploy`."""


def mint_badge(mint_request_id: int, now: datetime) -> str:
    """Take one request as far as it goes; returns its state. Raises (so the job retries) while the chain
    does not answer or the receipt is not in yet."""
    request = db.session.get(MintRequest, mint_request_id)
    if request is None or request.state in ("minted", "failed", "cancelled"):
        return request.state if request is not None else "cancelled"
    try:
        if request.tx_id is None and not _queue_mint(mint_request_id, now):
            return "pending"  # no wallet yet: it waits
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
        _note(mint_request_id, f"{WAITING_FOR_CHAIN}: {type(error).__name__}", now)
        raise ChainUnavailable(type(error).__name__) from error
    request = db.session.get(MintRequest, mint_request_id, populate_existing=True)
    try:
        status = advance(request.tx_id, now)
    except ChainUnavailable as error:
        _note(mint_request_id, f"{WAITING_FOR_CHAIN}: {error}", now)
        raise
    if status == "confirmed":
        state = _set_state(mint_request_id, "minted", None, now)
        if _revoked(mint_request_id):  # revoked while its mint was on its way: burn it now
            _queue_burn(mint_request_id, now)
        return state
    if status == "failed":
        if _already_held(request):
            return _set_state(mint_request_id, "minted", None, now)
        reason = db.session.get(ChainTransaction, request.tx_id).last_error
        return _set_state(mint_request_id, "failed", reason, now)
    return status


def _queue_mint(mint_request_id: int, now: datetime) -> bool:
    """Record the mint in the outbox and the request (one transaction); False when no wallet is linked."""
    with unit_of_work() as session:
        request = session.get(MintRequest, mint_request_id, with_for_update=True, populate_existing=True)
        if request.tx_id is not None:
            return True
        if request.state != "pending":
            return False
        wallet = events.wallet_of.ask(user_id=request.user_id)
        if not wallet:
            return False
        chain_id = current_chain_id()
        badge_address = contract_address(chain_id, "SapienBadge")
        if badge_address is None:
            raise ContractsNotDeployed(f"no SapienBadge recorded for chain {chain_id}: run `flask chain deploy`")
        tx_id = queue_transaction(
            key=f"badge-mint:{request.id}", kind="badge_mint", chain_id=chain_id, to=badge_address,
            data=call_data("SapienBadge", "mint", wallet, request.user_id, request.badge_slug), now=now,
            extra={"mint_request_id": request.id},
        )
        request.tx_id, request.chain_id, request.wallet_address = tx_id, chain_id, wallet
        request.token_id = str(badge_token_id(request.user_id, request.badge_slug))
        request.state, request.last_error, request.updated_at = "submitted", None, now
    return True


def _already_held(request: MintRequest) -> bool:
    """A reverted mint whose token is already in the wallet (minted by an earlier life of this database)."""
    try:
        badge = contract_at(web3_client(), "SapienBadge", db.session.get(ChainTransaction, request.tx_id).payload["to"])
        return badge.functions.ownerOf(int(request.token_id)).call().lower() == (request.wallet_address or "").lower()
    except Exception:  # noqa: BLE001 - no owner (the call reverts) or no answer: not held
        return False


def _set_state(mint_request_id: int, state: str, error: str | None, now: datetime) -> str:
    with unit_of_work() as session:
        request = session.get(MintRequest, mint_request_id, with_for_update=True, populate_existing=True)
        if request.state == "submitted":
            request.state, request.last_error, request.updated_at = state, error, now
        return request.state


def _note(mint_request_id: int, error: str, now: datetime) -> None:
    with unit_of_work() as session:
        request = session.get(MintRequest, mint_request_id, with_for_update=True, populate_existing=True)
        request.last_error, request.updated_at = error[:2000], now


MINT_BATCH = 100


def mint_ready_badges(now: datetime, limit: int = MINT_BATCH) -> dict[str, int]:
    """Mint many awarded badges at once, pipelined through the outbox (`advance_many`): every request
    whose member has a wallet is queued, then all their transactions are signed, sent and confirmed
    together. Each request still goes through its own states and outbox row, so a crash anywhere leaves
    work that the per-request job (`mint_badge`, queued by the reconciler) finishes. Returns counts by
    final state."""
    candidates = mints_to_do()[:limit]  # those whose member has a wallet (the others would block the batch)
    with unit_of_work():  # one commit for all of them
        ready = [mint_id for mint_id in candidates if _queue_mint(mint_id, now)]
    if not ready:
        return {}
    tx_of = dict(db.session.execute(select(MintRequest.id, MintRequest.tx_id).where(MintRequest.id.in_(ready))).all())
    try:
        statuses = advance_many(list(tx_of.values()), now)
    except ChainUnavailable as error:
        for mint_id in ready:
            _note(mint_id, f"{WAITING_FOR_CHAIN}: {error}", now)
        raise
    counts: dict[str, int] = {}
    confirmed = [mint_id for mint_id, tx_id in tx_of.items() if statuses.get(tx_id) == "confirmed"]
    with unit_of_work() as session:  # one statement and one commit for every minted request
        minted = session.scalars(
            update(MintRequest).where(MintRequest.id.in_(confirmed), MintRequest.state == "submitted")
            .values(state="minted", last_error=None, updated_at=now).returning(MintRequest.id)
        ).all()
        revoked = session.scalars(
            select(MintRequest.id).join(BadgeAward, BadgeAward.id == MintRequest.award_id)
            .where(MintRequest.id.in_(minted), BadgeAward.revoked_at.is_not(None))
        ).all()
        for mint_id in revoked:  # revoked while its mint was on its way: burn it now
            _queue_burn(mint_id, now)
    states = dict.fromkeys(confirmed, "minted")
    for mint_id, tx_id in tx_of.items():
        if statuses.get(tx_id) == "failed":
            states[mint_id] = mint_badge(mint_id, now)  # the per-request rule (already held, or failed with its reason)
        state = states.get(mint_id, "submitted")
        counts[state] = counts.get(state, 0) + 1
    return counts


# --- revoking = burning --------------------------------------------------------------------------

def on_badge_revoked(_sender=None, *, award_id: int, now: datetime, **_ignored) -> None:
    """In the revoke's transaction: a minted token is burned (an outbox transaction, sent after the
    commit). A mint still on its way is burned once it lands (`mint_badge`); a pending one was cancelled."""
    mint_id = db.session.scalar(select(MintRequest.id).where(MintRequest.award_id == award_id, MintRequest.state == "minted"))
    if mint_id is not None:
        _queue_burn(mint_id, now)


def _revoked(mint_request_id: int) -> bool:
    return db.session.scalar(
        select(BadgeAward.revoked_at).join(MintRequest, MintRequest.award_id == BadgeAward.id).where(MintRequest.id == mint_request_id)
    ) is not None


def _queue_burn(mint_request_id: int, now: datetime) -> int:
    """The burn of the request's token, once (its outbox key), sent after the commit."""
    with unit_of_work() as session:
        request = session.get(MintRequest, mint_request_id, populate_existing=True)
        mint_tx = session.get(ChainTransaction, request.tx_id)
        tx_id = queue_transaction(
            key=f"badge-burn:{request.id}", kind="badge_burn", chain_id=request.chain_id, to=mint_tx.payload["to"],
            data=call_data("SapienBadge", "burn", int(request.token_id)), now=now, extra={"mint_request_id": request.id},
        )
        after_commit(lambda: enqueue_send(tx_id))
    return tx_id
