"""The transaction outbox: every on-chain effect is a row first, then signed, sent and confirmed.

    pending ──sign──▶ signed ──broadcast──▶ sent ──receipt (+ confirmations)──▶ confirmed | failed

Invariants (DESIGN rule 3):
- A row is committed before anything is sent; its unique `key` makes the effect exactly-once.
- One nonce allocator per signing key: the signer's `SignerNonce` row is locked FOR UPDATE while a nonce
  is handed out, so concurrent workers never share one.
- The signed bytes and their hash are committed *before* the broadcast. A retry (a job run twice, a
  worker killed between sign and send, or between send and receipt) re-broadcasts the very same bytes:
  "already known" counts as sent, and "nonce too low" counts as sent when our hash is on chain. Only
  when the nonce went to another transaction (our bytes can never be mined) is the row signed afresh.
- A row is confirmed only from its receipt, after the chain's confirmations (registry).
- A transaction that reverts is `failed`, with the reason; nothing resends it on its own.
- A sent transaction still unmined after `CHAIN_REPLACE_AFTER_SECONDS` (fees too low for the market) is
  replaced: the same nonce signed again with fees raised by `CHAIN_FEE_BUMP_PERCENT` (at least the
  market's), stored before its broadcast like any signed bytes. The hashes it replaced are kept in the
  payload (`replaced_hashes`) and watched too: whichever version is mined (one at most, they share a
  nonce) gives the receipt.

`advance` drives one row as far as it can go and is safe to call any number of times, from any number of
workers at once. The node being down raises `ChainUnavailable`, a receipt still missing raises
`TransactionPending`: the job lets RQ retry, and the reconciler (`sapien/chain/pending.py`) re-enqueues
whatever a crash left half done.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

import requests
from eth_account import Account
from flask import current_app
from sqlalchemy import select, update
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from sapien.chain.client import web3_client
from sapien.chain.contracts import revert_reason
from sapien.chain.models import ChainTransaction, SignerNonce
from sapien.chain.registry import confirmations_for
from sapien.database import as_utc, dialect_insert, unit_of_work
from sapien.extensions import db
from sapien.failpoints import failpoint

GAS_HEADROOM_PERCENT = 20  # on top of the node's estimate
WAITING_FOR_CHAIN = "waiting for the chain"  # how `last_error` starts while the node does not answer


class ChainUnavailable(RuntimeError):
    """The node did not answer: try again later (the page says "waiting for the chain")."""


class TransactionPending(RuntimeError):
    """Sent, but not (yet) mined with enough confirmations: try again later."""


# --- queueing -----------------------------------------------------------------------------------

def queue_transaction(*, key: str, kind: str, chain_id: int, to: str | None, data: str, now: datetime, value: int = 0, extra: dict | None = None) -> int:
    """Record an intended transaction (in the caller's unit of work) and return its id. The same `key`
    twice returns the first row's id: the effect is queued once."""
    payload = {"to": to, "data": data, "value": int(value), **(extra or {})}
    with unit_of_work() as session:
        inserted = session.execute(
            dialect_insert(ChainTransaction)
            .values(key=key, kind=kind, chain_id=chain_id, payload=payload, status="pending", attempts=0, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(ChainTransaction.id)
        ).scalar()
        if inserted is not None:
            return inserted
        return session.scalar(select(ChainTransaction.id).where(ChainTransaction.key == key))


def transaction_by_key(key: str) -> ChainTransaction | None:
    return db.session.scalar(select(ChainTransaction).where(ChainTransaction.key == key))


# --- driving one row ----------------------------------------------------------------------------

def advance(tx_id: int, now: datetime, w3: Web3 | None = None) -> str:
    """Take the row as far as it goes (sign, broadcast, await its receipt); returns its final status."""
    try:
        return _advance(tx_id, now, w3 or web3_client(timeout=10))
    except ChainUnavailable as error:
        _record_error(tx_id, now, f"{WAITING_FOR_CHAIN}: {error}")
        raise


def _advance(tx_id: int, now: datetime, w3: Web3) -> str:
    for _round in range(3):  # a nonce lost to another transaction sends us back to signing, once or twice
        status = _status(tx_id)
        if status == "pending":
            status = _sign(tx_id, now, w3)
            failpoint("chain.after-sign")
        if status == "signed":
            status = _broadcast(tx_id, now, w3)
            if status == "signed":
                continue  # lost its nonce: signed again on the next round
            failpoint("chain.after-send")
        if status == "sent":
            status = _await_receipt(tx_id, now, w3)
        return status
    raise TransactionPending(f"transaction {tx_id} lost its nonce repeatedly")


def _status(tx_id: int) -> str:
    db.session.expire_all()
    status = db.session.scalar(select(ChainTransaction.status).where(ChainTransaction.id == tx_id))
    if status is None:
        raise LookupError(f"no chain transaction {tx_id}")
    return status


def _signer():
    return Account.from_key(current_app.config["CHAIN_SIGNER_KEY"])


def _node_call(call):
    """Run a node call, turning "the node did not answer" into `ChainUnavailable`."""
    try:
        return call()
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
        raise ChainUnavailable(type(error).__name__) from error


node_call = _node_call  # for the outbox's owners' own reads of the chain


def _sign(tx_id: int, now: datetime, w3: Web3) -> str:
    """pending → signed: allocate the signer's next nonce under its row lock and store the signed bytes."""
    account = _signer()
    with unit_of_work() as session:
        row = session.get(ChainTransaction, tx_id, with_for_update=True, populate_existing=True)
        if row.status != "pending":
            return row.status
        chain_id = _node_call(lambda: w3.eth.chain_id)
        if chain_id != row.chain_id:
            raise ChainUnavailable(f"the node is chain {chain_id}, the transaction is for chain {row.chain_id}")
        transaction = {"from": account.address, "data": row.payload["data"], "value": int(row.payload.get("value", 0)), "chainId": chain_id}
        if row.payload.get("to"):
            transaction["to"] = Web3.to_checksum_address(row.payload["to"])
        try:
            gas = _node_call(lambda: w3.eth.estimate_gas(transaction))
        except (ContractLogicError, Web3RPCError) as error:
            # It would revert: record why and spend no nonce on it.
            row.status, row.last_error, row.attempts, row.updated_at = "failed", _reason(error), row.attempts + 1, now
            return row.status
        base_fee = _node_call(lambda: w3.eth.get_block("latest")["baseFeePerGas"])
        priority = _node_call(lambda: w3.eth.max_priority_fee)
        nonce = _allocate_nonce(session, chain_id, account.address, now, w3)
        transaction.update(
            nonce=nonce, gas=gas * (100 + GAS_HEADROOM_PERCENT) // 100, maxPriorityFeePerGas=priority,
            maxFeePerGas=2 * base_fee + priority, type=2,
        )
        transaction.pop("from")
        signed = account.sign_transaction(transaction)
        fees = {"gas": transaction["gas"], "maxFeePerGas": transaction["maxFeePerGas"], "maxPriorityFeePerGas": priority}
        row.payload = {**row.payload, "fees": fees}
        row.signer, row.nonce = account.address, nonce
        row.raw_tx, row.tx_hash = "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()
        row.status, row.attempts, row.last_error, row.updated_at = "signed", row.attempts + 1, None, now
        return row.status


def _allocate_nonce(session, chain_id: int, address: str, now: datetime, w3: Web3, count: int = 1) -> int:
    """The signer's next nonce (the first of `count` in a row), under its row lock. The chain's own count
    wins when it is ahead (another tool used the key); with nothing of ours in flight it is the truth (a
    fresh local chain)."""
    session.execute(
        dialect_insert(SignerNonce)
        .values(chain_id=chain_id, address=address, next_nonce=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["chain_id", "address"])
    )
    signer = session.get(SignerNonce, (chain_id, address), with_for_update=True, populate_existing=True)
    on_chain = _node_call(lambda: w3.eth.get_transaction_count(address, "pending"))
    in_flight = session.scalar(
        select(ChainTransaction.id)
        .where(ChainTransaction.chain_id == chain_id, ChainTransaction.signer == address, ChainTransaction.status.in_(("signed", "sent")))
        .limit(1)
    )
    nonce = max(signer.next_nonce, on_chain) if in_flight is not None else on_chain
    signer.next_nonce, signer.updated_at = nonce + count, now
    return nonce


def _broadcast(tx_id: int, now: datetime, w3: Web3) -> str:
    """signed → sent: send the stored bytes. Already known, or already mined, counts as sent."""
    row = db.session.get(ChainTransaction, tx_id, populate_existing=True)
    try:
        _node_call(lambda: w3.eth.send_raw_transaction(row.raw_tx))
    except Web3RPCError as error:
        message = _reason(error).lower()
        if "already known" in message or "already imported" in message:
            pass
        elif "nonce too low" in message or "nonce has already been used" in message:
            if not _known(w3, row.tx_hash):
                return _sign_again(tx_id, now, _reason(error))
        else:
            _record_error(tx_id, now, _reason(error))
            raise
    with unit_of_work():
        db.session.execute(
            update(ChainTransaction)
            .where(ChainTransaction.id == tx_id, ChainTransaction.status == "signed")
            .values(status="sent", sent_at=now, updated_at=now)
        )
    return _status(tx_id)


def _known(w3: Web3, tx_hash: str) -> bool:
    try:
        _node_call(lambda: w3.eth.get_transaction(tx_hash))
        return True
    except TransactionNotFound:
        return False


def _sign_again(tx_id: int, now: datetime, reason: str) -> str:
    """Our nonce went to another transaction, so our bytes can never be mined: back to pending."""
    with unit_of_work():
        db.session.execute(
            update(ChainTransaction)
            .where(ChainTransaction.id == tx_id, ChainTransaction.status == "signed")
            .values(status="pending", nonce=None, raw_tx=None, tx_hash=None, last_error=reason, updated_at=now)
        )
    return "signed"  # tells `advance` to go round again


def _await_receipt(tx_id: int, now: datetime, w3: Web3) -> str:
    """sent → confirmed | failed, from the receipt once the chain's confirmations are on top of it. A
    transaction left unmined too long is replaced with higher fees (once per call)."""
    row = db.session.get(ChainTransaction, tx_id, populate_existing=True)
    needed = confirmations_for(row.chain_id)
    started = time.monotonic()
    deadline = started + float(current_app.config.get("CHAIN_RECEIPT_TIMEOUT_SECONDS", 60))
    replace_after = float(current_app.config.get("CHAIN_REPLACE_AFTER_SECONDS", 180))
    age = (now - as_utc(row.sent_at or row.updated_at)).total_seconds()
    replaced = False
    pause = 0.02
    while True:
        hashes = [row.tx_hash, *row.payload.get("replaced_hashes", [])]
        receipt = next((found for found in (_receipt(w3, tx_hash) for tx_hash in hashes) if found is not None), None)
        if receipt is not None:
            mined_in = receipt["blockNumber"]
            if needed == 0 or _node_call(lambda: w3.eth.block_number) - mined_in + 1 >= needed:
                return _finish(tx_id, receipt, now)
        elif not replaced and age + (time.monotonic() - started) >= replace_after:
            row = _replace(tx_id, now, w3)
            replaced = True
            continue
        elif not _known(w3, row.tx_hash):
            # The node forgot it (restarted, evicted from its pool): the same bytes again.
            # A refusal means mined meanwhile, or its nonce is taken: the next look at the receipt tells.
            with contextlib.suppress(Web3RPCError):
                _node_call(lambda raw=row.raw_tx: w3.eth.send_raw_transaction(raw))
        if time.monotonic() > deadline:
            raise TransactionPending(f"transaction {tx_id} ({row.tx_hash}) has no receipt with {needed} confirmation(s) yet")
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def _replace(tx_id: int, now: datetime, w3: Web3) -> ChainTransaction:
    """Sign the stuck transaction again with the same nonce and higher fees, store it, then broadcast it.
    The old hash stays watched: if the old version is mined after all, its receipt counts."""
    bump = 100 + int(current_app.config.get("CHAIN_FEE_BUMP_PERCENT", 25))
    account = _signer()
    with unit_of_work() as session:
        row = session.get(ChainTransaction, tx_id, with_for_update=True, populate_existing=True)
        if row.status != "sent" or row.nonce is None:
            return row
        old = row.payload.get("fees") or {}
        base_fee = _node_call(lambda: w3.eth.get_block("latest")["baseFeePerGas"])
        market_priority = _node_call(lambda: w3.eth.max_priority_fee)
        priority = max(int(old.get("maxPriorityFeePerGas", 0)) * bump // 100 + 1, market_priority)
        max_fee = max(int(old.get("maxFeePerGas", 0)) * bump // 100 + 1, 2 * base_fee + priority)
        gas = int(old.get("gas") or _node_call(lambda: w3.eth.estimate_gas({"from": account.address, "to": row.payload.get("to"), "data": row.payload["data"]})))
        transaction = {"data": row.payload["data"], "value": int(row.payload.get("value", 0)), "chainId": row.chain_id, "nonce": row.nonce,
                       "gas": gas, "maxPriorityFeePerGas": priority, "maxFeePerGas": max_fee, "type": 2}
        if row.payload.get("to"):
            transaction["to"] = Web3.to_checksum_address(row.payload["to"])
        signed = account.sign_transaction(transaction)
        row.payload = {**row.payload, "fees": {"gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": priority},
                       "replaced_hashes": [row.tx_hash, *row.payload.get("replaced_hashes", [])]}
        row.raw_tx, row.tx_hash = "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()
        row.attempts, row.updated_at = row.attempts + 1, now
        row.last_error = f"replaced with higher fees after {current_app.config.get('CHAIN_REPLACE_AFTER_SECONDS')} s unmined"
    failpoint("chain.after-replace-sign")
    with contextlib.suppress(Web3RPCError):  # refused (underpriced, or an older version was mined): still watched
        _node_call(lambda: w3.eth.send_raw_transaction(row.raw_tx))
    return db.session.get(ChainTransaction, tx_id, populate_existing=True)


def _receipt(w3: Web3, tx_hash: str):
    try:
        return _node_call(lambda: w3.eth.get_transaction_receipt(tx_hash))
    except TransactionNotFound:
        return None


def _finish(tx_id: int, receipt, now: datetime) -> str:
    succeeded = receipt["status"] == 1
    with unit_of_work() as session:
        row = session.get(ChainTransaction, tx_id, with_for_update=True, populate_existing=True)
        if row.finished:
            return row.status
        row.status = "confirmed" if succeeded else "failed"
        mined = receipt["transactionHash"]
        mined = mined.to_0x_hex() if hasattr(mined, "to_0x_hex") else str(mined)
        if mined.lower() != (row.tx_hash or "").lower():  # an earlier version of a replaced transaction
            row.payload = {**row.payload, "replaced_hashes": [row.tx_hash, *[h for h in row.payload.get("replaced_hashes", []) if h.lower() != mined.lower()]]}
            row.tx_hash = mined
        row.block_number = receipt["blockNumber"]
        row.contract_address = receipt.get("contractAddress") or None
        row.last_error = None if succeeded else "the transaction reverted"
        row.confirmed_at = now if succeeded else None
        row.updated_at = now
        return row.status


def _record_error(tx_id: int, now: datetime, reason: str) -> None:
    with unit_of_work():
        db.session.execute(update(ChainTransaction).where(ChainTransaction.id == tx_id).values(last_error=reason[:2000], updated_at=now))


def _reason(error: Exception) -> str:
    if isinstance(error, ContractLogicError):
        named = revert_reason(error.data if isinstance(error.data, str) else None)
        return f"reverted: {named or error.message or error.data}"[:2000]
    if isinstance(error, Web3RPCError) and isinstance(error.rpc_response, dict):
        message = (error.rpc_response.get("error") or {}).get("message")
        if message:
            return str(message)[:2000]
    return (str(error) or type(error).__name__)[:2000]


