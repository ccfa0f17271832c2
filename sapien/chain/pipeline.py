"""The outbox pipelined: many rows signed, sent and confirmed together (`advance_many`).

The rows go through the very states `outbox.advance` uses, committed at the same points (signed bytes
before any broadcast), so whatever a crash leaves half done `advance` finishes. What differs is the cost:
one nonce lock and one commit per stage for all the rows, and the node asked in JSON-RPC batches (every
estimate, every broadcast, every receipt in one round trip each).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from sapien.chain.client import web3_client
from sapien.chain.contracts import revert_reason
from sapien.chain.models import ChainTransaction
from sapien.chain.outbox import (
    GAS_HEADROOM_PERCENT,
    WAITING_FOR_CHAIN,
    ChainUnavailable,
    _allocate_nonce,
    _node_call,
    _reason,
    _receipt,
    _record_error,
    _signer,
    advance,
)
from sapien.chain.registry import confirmations_for
from sapien.database import unit_of_work
from sapien.extensions import db
from sapien.failpoints import failpoint


def advance_many(tx_ids: list[int], now: datetime, w3: Web3 | None = None) -> dict[int, str]:
    """`advance` for many rows at once, pipelined: sign them all (one nonce lock, one commit), broadcast
    them all, then collect their receipts and finish them in one commit. The rows go through the very
    states `advance` uses, committed at the same points, so whatever a crash leaves half done `advance`
    (the reconciler's job) finishes. A row that does not fit the fast path (its nonce lost, no receipt in
    time) is left to `advance`. Returns {id: status}."""
    w3 = w3 or web3_client(timeout=10)
    try:
        _sign_many(tx_ids, now, w3)
        failpoint("chain.after-sign")
        rows = list(db.session.scalars(select(ChainTransaction).where(ChainTransaction.id.in_(tx_ids), ChainTransaction.status == "signed")
                                        .order_by(ChainTransaction.nonce).execution_options(populate_existing=True)))
        sent = []
        answers = _batch(w3, [("eth_sendRawTransaction", [row.raw_tx]) for row in rows])
        for index, row in enumerate(rows):
            if answers is not None:
                error = (answers[index].get("error") or {}).get("message", "")
                if error and "already known" not in str(error).lower():
                    continue  # `advance` sorts it out below
            else:
                try:
                    _node_call(lambda raw=row.raw_tx: w3.eth.send_raw_transaction(raw))
                except Web3RPCError as problem:
                    if "already known" not in _reason(problem).lower():
                        continue
            sent.append(row.id)
        if sent:
            with unit_of_work():
                db.session.execute(update(ChainTransaction).where(ChainTransaction.id.in_(sent), ChainTransaction.status == "signed")
                                   .values(status="sent", sent_at=now, updated_at=now))
        failpoint("chain.after-send")
        _finish_many(tx_ids, now, w3)
    except ChainUnavailable as error:
        for tx_id in tx_ids:
            _record_error(tx_id, now, f"{WAITING_FOR_CHAIN}: {error}")
        raise
    statuses = dict(db.session.execute(select(ChainTransaction.id, ChainTransaction.status).where(ChainTransaction.id.in_(tx_ids))).all())
    for tx_id, status in statuses.items():
        if status in UNFINISHED:
            statuses[tx_id] = advance(tx_id, now, w3)
    return statuses


UNFINISHED = ("pending", "signed", "sent")


def _batch(w3: Web3, calls: list[tuple[str, list]]) -> list[dict] | None:
    """Many JSON-RPC calls in one HTTP round trip (responses in the calls' order), or None when the node
    does not take batches (then the caller asks one by one)."""
    if not calls:
        return []
    responses = _node_call(lambda: w3.provider.make_batch_request(calls))
    return responses if isinstance(responses, list) and len(responses) == len(calls) else None


def _rpc_error(response: dict) -> str:
    error = response.get("error") or {}
    named = revert_reason(error.get("data") if isinstance(error.get("data"), str) else None)
    return (f"reverted: {named}" if named else str(error.get("message") or error))[:2000]


def _sign_many(tx_ids: list[int], now: datetime, w3: Web3) -> None:
    """pending → signed for every pending row of `tx_ids`, under one lock of the signer's nonce row."""
    account = _signer()
    with unit_of_work() as session:
        rows = list(session.scalars(select(ChainTransaction).where(ChainTransaction.id.in_(tx_ids), ChainTransaction.status == "pending")
                                    .order_by(ChainTransaction.id).with_for_update().execution_options(populate_existing=True)))
        if not rows:
            return
        chain_id = _node_call(lambda: w3.eth.chain_id)
        base_fee = _node_call(lambda: w3.eth.get_block("latest")["baseFeePerGas"])
        priority = _node_call(lambda: w3.eth.max_priority_fee)
        to_sign = []
        transactions = []
        for row in rows:
            if row.chain_id != chain_id:
                raise ChainUnavailable(f"the node is chain {chain_id}, the transaction is for chain {row.chain_id}")
            transaction = {"from": account.address, "data": row.payload["data"], "value": int(row.payload.get("value", 0)), "chainId": chain_id}
            if row.payload.get("to"):
                transaction["to"] = Web3.to_checksum_address(row.payload["to"])
            transactions.append(transaction)
        # Every estimate in one round trip: a transaction that would revert spends no nonce.
        estimates = _batch(w3, [("eth_estimateGas", [{k: (hex(v) if isinstance(v, int) else v) for k, v in t.items() if k != "chainId"}])
                                for t in transactions])
        for index, (row, transaction) in enumerate(zip(rows, transactions, strict=True)):
            if estimates is not None:
                response = estimates[index]
                if "error" in response or response.get("result") is None:
                    row.status, row.last_error, row.attempts, row.updated_at = "failed", _rpc_error(response), row.attempts + 1, now
                    continue
                gas = int(response["result"], 16)
            else:
                try:
                    gas = _node_call(lambda transaction=transaction: w3.eth.estimate_gas(transaction))
                except (ContractLogicError, Web3RPCError) as error:
                    row.status, row.last_error, row.attempts, row.updated_at = "failed", _reason(error), row.attempts + 1, now
                    continue
            to_sign.append((row, transaction, gas))
        if not to_sign:
            return
        first = _allocate_nonce(session, chain_id, account.address, now, w3, count=len(to_sign))
        for offset, (row, transaction, gas) in enumerate(to_sign):
            transaction.pop("from")
            transaction.update(nonce=first + offset, gas=gas * (100 + GAS_HEADROOM_PERCENT) // 100, maxPriorityFeePerGas=priority,
                               maxFeePerGas=2 * base_fee + priority, type=2)
            signed = account.sign_transaction(transaction)
            row.payload = {**row.payload, "fees": {"gas": transaction["gas"], "maxFeePerGas": transaction["maxFeePerGas"], "maxPriorityFeePerGas": priority}}
            row.signer, row.nonce = account.address, first + offset
            row.raw_tx, row.tx_hash = "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()
            row.status, row.attempts, row.last_error, row.updated_at = "signed", row.attempts + 1, None, now


def _finish_many(tx_ids: list[int], now: datetime, w3: Web3) -> None:
    """sent → confirmed | failed for every sent row whose receipt is in (with its confirmations): one commit."""
    rows = list(db.session.scalars(select(ChainTransaction).where(ChainTransaction.id.in_(tx_ids), ChainTransaction.status == "sent")
                                   .execution_options(populate_existing=True)))
    if not rows:
        return
    needed = confirmations_for(rows[0].chain_id)
    head = _node_call(lambda: w3.eth.block_number) if needed else 0
    receipts = {}
    answers = _batch(w3, [("eth_getTransactionReceipt", [row.tx_hash]) for row in rows])
    for index, row in enumerate(rows):
        if answers is not None:
            found = answers[index].get("result")
            receipt = None if not found else {"status": int(found["status"], 16), "blockNumber": int(found["blockNumber"], 16),
                                              "contractAddress": found.get("contractAddress")}
        else:
            receipt = _receipt(w3, row.tx_hash)
        if receipt is not None and (needed == 0 or head - receipt["blockNumber"] + 1 >= needed):
            receipts[row.id] = receipt
    if not receipts:
        return
    with unit_of_work() as session:
        for row in session.scalars(select(ChainTransaction).where(ChainTransaction.id.in_(list(receipts)), ChainTransaction.status == "sent")
                                   .with_for_update().execution_options(populate_existing=True)):
            receipt = receipts[row.id]
            succeeded = receipt["status"] == 1
            row.status, row.block_number = ("confirmed" if succeeded else "failed"), receipt["blockNumber"]
            row.contract_address = receipt.get("contractAddress") or None
            row.last_error = None if succeeded else "the transaction reverted"
            row.confirmed_at, row.updated_at = (now if succeeded else None), now
